"""The spoken-content check with pocketsphinx on real recordings: digit strings assembled from FSDD, sent as
OGG/Opus and decoded as the gateway decodes them.

On 4-digit strings of all six FSDD speakers (90 strings, 5 decoys) it accepted 91 % of the right strings and
12 % of wrong ones; the bounds below leave room for the random draw of recordings, not for a broken checker.
"""

from __future__ import annotations

import random

import pytest

from support.speech import DigitSpeaker, ogg_opus
from voicegate_voice_auth.content import ContentChecker, digit_words, new_challenge, phrase_words, show_digits


def test_challenges_are_random_digit_strings_shown_as_digits() -> None:
    drawn = {new_challenge(4) for _ in range(200)}
    assert len(drawn) > 150  # fresh every time
    for challenge in drawn:
        assert len(challenge) == 4 and challenge.isdigit()
        assert all(a != b for a, b in zip(challenge, challenge[1:]))  # no "4 4": easy to mishear
    assert show_digits("4729") == "4 7 2 9"
    assert digit_words("4029") == ("four", "zero", "two", "nine")
    assert phrase_words("My voice, 4 7!") == ("my", "voice", "four", "seven")
    with pytest.raises(ValueError):
        digit_words("47a9")


@pytest.fixture(scope="module")
def checker():
    checker = ContentChecker(decoys=5)
    yield checker
    checker.close()


async def test_the_right_digits_pass_and_other_digits_fail(checker) -> None:
    from voiceprints import decode_audio

    rng = random.Random(20261124)
    right = wrong = total = 0
    for name in ("theo", "lucas", "george"):
        speaker = DigitSpeaker(name, seed=7)
        for _ in range(6):
            said, other = new_challenge(4, rng=rng), new_challenge(4, rng=rng)
            samples = decode_audio(ogg_opus(speaker.say(said)), mime="audio/ogg").samples
            right += await checker.check(samples, digit_words(said))
            wrong += await checker.check(samples, digit_words(other))
            total += 1
    assert right >= 0.75 * total, f"accepted only {right}/{total} notes saying the right digits"
    assert wrong <= 0.25 * total, f"accepted {wrong}/{total} notes saying other digits"


async def test_the_same_note_and_challenge_always_get_the_same_answer(checker) -> None:
    samples = DigitSpeaker("theo", seed=8).say("5183")
    answers = {await checker.check(samples, digit_words("5183")) for _ in range(3)}
    assert len(answers) == 1


async def test_a_note_in_a_passphrase_and_unknown_words(checker) -> None:
    samples = DigitSpeaker("theo", seed=9).say("4729")
    assert await checker.check(samples, phrase_words("4 7 2 9"))
    assert await checker.missing_words(("my", "voice", "xqzzyv")) == ["xqzzyv"]
