"""What the customer *said*: one-time digit challenges and an offline check of a note's spoken content.

The speaker score says *who* spoke; this module says whether they said the words we asked for, which is what
defeats a replayed recording of an earlier note (it said other digits).

The check is a closed-set decision with pocketsphinx (its wheel ships an English acoustic model and CMUdict):
the note is decoded against a JSGF grammar holding the expected words *and* a few decoy sequences of the same
length (digit strings that differ from the expected one in every position). The note passes when the expected
sequence wins. Free recognition of a digit loop is much worse on real phone-band recordings (insertions and
deletions dominate); letting a handful of decoys compete measured best on the FSDD recordings (see
docs/voice-verification-operators.md for the figures). Decoys come from a generator seeded by the expected
words, so the same note and challenge always get the same answer.

pocketsphinx is CPU-bound and its decoder is not thread-safe: each worker thread owns one decoder, and the
async API runs in a small dedicated pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Words the grammar accepts for each digit: people say "oh" for 0 in numbers.
_ALTERNATIVES = {"zero": ("zero", "oh")}
SAMPLE_RATE = 16_000


def new_challenge(length: int, *, rng: random.Random | None = None) -> str:
    """A fresh random digit string such as ``"4729"`` (cryptographic randomness unless ``rng`` is given).

    No digit repeats twice in a row: "4 4" is easy to mishear as one word and awkward to say.
    """
    rng = rng or secrets.SystemRandom()
    digits: list[int] = []
    while len(digits) < length:
        digit = rng.randrange(10)
        if not digits or digit != digits[-1]:
            digits.append(digit)
    return "".join(str(d) for d in digits)


def show_digits(challenge: str) -> str:
    """How a challenge is shown to a person: digits separated by spaces, ``"4 7 2 9"``."""
    return " ".join(challenge)


def digit_words(challenge: str) -> tuple[str, ...]:
    """``"409"`` -> ``("four", "zero", "nine")``."""
    if not challenge.isdigit():
        raise ValueError(f"a digit challenge holds digits only, got {challenge!r}")
    return tuple(DIGIT_WORDS[int(c)] for c in challenge)


def phrase_words(phrase: str) -> tuple[str, ...]:
    """The words of a passphrase, lower-case; digits become their English words (``"4 7"`` -> four seven)."""
    words: list[str] = []
    for raw in phrase.lower().replace(",", " ").replace(".", " ").split():
        token = raw.strip("!?;:'\"")
        if token.isdigit():
            words.extend(DIGIT_WORDS[int(c)] for c in token)
        elif token:
            words.append(token)
    return tuple(words)


class ContentChecker:
    """Checks that a 16 kHz mono note says ``expected`` words, against ``decoys`` competing digit sequences.

    ``near_misses`` adds decoys equal to the expected words but for one position: stricter (a note saying other
    digits that happen to share some with the challenge passes less often), at the price of more genuine notes
    refused. ``workers`` threads each hold their own pocketsphinx decoder (~0.3 s to create, made on first use).
    """

    def __init__(self, *, decoys: int = 5, near_misses: int = 0, workers: int = 1) -> None:
        if decoys < 1 or near_misses < 0:
            raise ValueError("need decoys >= 1 and near_misses >= 0")
        self.decoys = decoys
        self.near_misses = near_misses
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voice-content")

    # -- configuration checks ----------------------------------------------------------------------------------
    def unknown_words(self, words: Sequence[str]) -> list[str]:
        """Words the recogniser's dictionary lacks (a passphrase must avoid them)."""
        decoder = self._decoder()
        return [w for w in words if decoder.lookup_word(w) is None]

    async def missing_words(self, words: Sequence[str]) -> list[str]:
        """:meth:`unknown_words` in the worker pool (loading the dictionary takes a moment)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.unknown_words, tuple(words))

    # -- the check ---------------------------------------------------------------------------------------------
    def says(self, samples: np.ndarray, expected: Sequence[str]) -> bool:
        """True when ``expected`` beats every decoy for this audio (blocking: call from a worker thread)."""
        expected = tuple(expected)
        if not expected:
            raise ValueError("nothing expected")
        grammar = self._grammar(expected, self._decoy_sequences(expected))
        decoder = self._decoder()
        decoder.add_jsgf_string("content", grammar)
        decoder.activate_search("content")
        pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        heard = tuple(hypothesis.hypstr.split()) if hypothesis is not None else ()
        return _canonical(heard) == _canonical(expected)

    async def check(self, samples: np.ndarray, expected: Sequence[str]) -> bool:
        """:meth:`says` in this checker's worker pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.says, samples, tuple(expected))

    def says_in_note(self, data: bytes, mime: str | None, expected: Sequence[str], max_bytes: int) -> bool:
        """Decode a voice note (16 kHz mono, as the speaker engine does) and check it (blocking)."""
        from voiceprints import decode_audio

        return self.says(decode_audio(data, mime=mime, max_bytes=max_bytes).samples, expected)

    async def check_note(self, data: bytes, mime: str | None, expected: Sequence[str], *,
                         max_bytes: int = 10_000_000) -> bool:
        """:meth:`says_in_note` in this checker's worker pool (raises :class:`voiceprints.AudioRejected`)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.says_in_note, data, mime, tuple(expected), max_bytes)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- internals ---------------------------------------------------------------------------------------------
    def _decoder(self):  # noqa: ANN202 - pocketsphinx has no type stubs
        decoder = getattr(self._local, "decoder", None)
        if decoder is None:
            import pocketsphinx  # imported here: only the workers need it

            # lm=None: no language model, only the grammars we add; the wheel's en-us model and dictionary.
            decoder = pocketsphinx.Decoder(pocketsphinx.Config(lm=None, loglevel="FATAL"))
            self._local.decoder = decoder
        return decoder

    def _decoy_sequences(self, expected: tuple[str, ...]) -> list[tuple[str, ...]]:
        # Seeded by the expected words: the same note and challenge always give the same answer.
        seed = int.from_bytes(hashlib.sha256(" ".join(expected).encode()).digest()[:8], "big")
        rng = random.Random(seed)
        decoys: list[tuple[str, ...]] = []
        attempts = 0
        while len(decoys) < self.decoys and attempts < 100 * self.decoys:
            attempts += 1
            # Each decoy differs from the expected sequence in every position, so a note saying the expected words
            # never loses to a near-copy of them.
            decoy = tuple(rng.choice([d for d in DIGIT_WORDS if d != word]) for word in expected)
            if decoy not in decoys:
                decoys.append(decoy)
        for k in range(self.near_misses):
            position = k % len(expected)
            near = list(expected)
            near[position] = rng.choice([d for d in DIGIT_WORDS if d != expected[position]])
            if tuple(near) not in decoys:
                decoys.append(tuple(near))
        return decoys

    @staticmethod
    def _grammar(expected: tuple[str, ...], decoys: list[tuple[str, ...]]) -> str:
        def alternative(words: tuple[str, ...]) -> str:
            parts = []
            for word in words:
                options = _ALTERNATIVES.get(word)
                parts.append("(" + " | ".join(options) + ")" if options else word)
            return "( " + " ".join(parts) + " )"

        body = " | ".join(alternative(seq) for seq in [expected, *decoys])
        return f"#JSGF V1.0;\ngrammar content;\npublic <utterance> = {body};\n"


def _canonical(words: Sequence[str]) -> tuple[str, ...]:
    return tuple("zero" if w == "oh" else w for w in words)
