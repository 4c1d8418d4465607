"""Recognising an intent and the language of a message by keyword scoring.

Each intent's keyword phrases and example sentences are reduced to *content words* (stop
words removed, accents folded). A keyword phrase scores 1.0 when all its words occur in the
message and 0 otherwise; an example sentence scores the share of its words that occur. The
intent's score is its best phrase; the best intent wins if it reaches ``min_score``, ties
going to the higher ``priority`` and then to the earlier intent in the file.

Words match as :func:`voicegate_demo_bot.text.same_word` says (equal, or sharing a stem).
The phrases' stems are computed once, and an index maps each word and each stem to the
phrases holding it, with the positions it fills as bits. A message looks up its distinct words
and stems and ORs their bits per phrase; the number of bits set is how many of the phrase's
words it has. Only phrases sharing a word with the message are scored (the others score 0,
below any ``min_score``). This runs on every message.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicegate_demo_bot.flows import Flows, IntentFlow
from voicegate_demo_bot.text import stem, tokens


@dataclass(frozen=True)
class Match:
    intent: IntentFlow
    score: float


@dataclass(frozen=True)
class _Phrase:
    words: tuple[tuple[str, str | None], ...]  # (word, its stem or None if too short to have one)
    exact: bool  # keyword (all or nothing) rather than example (share of words)


class Matcher:
    """Scores messages against the intents of one :class:`Flows`."""

    def __init__(self, flows: Flows) -> None:
        self.flows = flows
        self._stopwords = {w for words in flows.stopwords.values() for t in words for w in tokens(t)}
        self._phrases: list[tuple[IntentFlow, list[_Phrase]]] = []
        self._vocabulary: dict[str, set[str]] = {lang: set() for lang in flows.languages}
        for language, words in flows.stopwords.items():
            self._vocabulary[language].update(w for t in words for w in tokens(t))
        for intent in flows.intents:
            phrases: list[_Phrase] = []
            for exact, by_language in ((True, intent.keywords), (False, intent.examples)):
                for language, texts in by_language.items():
                    for text in texts:
                        words = tokens(text)
                        self._vocabulary[language].update(words)
                        content = tuple(w for w in words if w not in self._stopwords) or tuple(words)
                        if content:
                            phrases.append(_Phrase(tuple((w, stem(w)) for w in content), exact))
            self._phrases.append((intent, phrases))
        # Every phrase numbered, with its intent's order; and an index from each word and each stem to the phrases
        # holding it, with the positions it fills as bits. A message ORs its words' bits per phrase, and the count
        # of set bits is how many of the phrase's words it has: no loop over each phrase's words.
        self._numbered: list[tuple[int, _Phrase]] = [
            (order, phrase) for order, (_, phrases) in enumerate(self._phrases) for phrase in phrases]
        self._word_bits: dict[str, list[tuple[int, int]]] = {}
        self._stem_bits: dict[str, list[tuple[int, int]]] = {}
        for number, (_, phrase) in enumerate(self._numbered):
            for side, index in ((0, self._word_bits), (1, self._stem_bits)):
                bits: dict[str, int] = {}
                for position, pair in enumerate(phrase.words):
                    if pair[side] is not None:
                        bits[pair[side]] = bits.get(pair[side], 0) | 1 << position
                for key, mask in bits.items():
                    index.setdefault(key, []).append((number, mask))
        # Words of one language only: shared words (e.g. "no") say nothing about the language.
        self._own_words = {
            lang: vocab.difference(*(other for o, other in self._vocabulary.items() if o != lang))
            for lang, vocab in self._vocabulary.items()
        }
        self._language_of_word = {w: lang for lang, own in self._own_words.items() for w in own}

    def phrase_scores(self, words: list[str]) -> dict[int, float]:
        """Phrase number -> score, for the phrases that share a word or a stem with ``words`` (the others score 0).

        A keyword phrase scores 1.0 when all its words are found, else 0; an example the share found."""
        found: dict[int, int] = {}  # phrase number -> positions found, as bits
        stems = {s for s in map(stem, words) if s is not None}
        for keys, index in ((set(words), self._word_bits), (stems, self._stem_bits)):
            for key in keys:
                for number, mask in index.get(key, ()):
                    found[number] = found.get(number, 0) | mask
        scores: dict[int, float] = {}
        numbered = self._numbered
        for number, mask in found.items():
            phrase = numbered[number][1]
            size, count = len(phrase.words), mask.bit_count()
            scores[number] = (1.0 if count == size else 0.0) if phrase.exact else count / size
        return scores

    def match(self, text: str, words: list[str] | None = None) -> Match | None:
        """The recognised intent of ``text``, or ``None`` below ``min_score``.

        ``words``: ``tokens(text)`` when the caller already has them (one tokenisation per message).
        """
        if words is None:
            words = tokens(text)
        best_by_intent: dict[int, float] = {}
        numbered = self._numbered
        for number, score in self.phrase_scores(words).items():
            order = numbered[number][0]
            if score > best_by_intent.get(order, 0.0):
                best_by_intent[order] = score
        best: tuple[float, int, int] | None = None
        best_match: Match | None = None
        for order in sorted(best_by_intent):
            intent, score = self._phrases[order][0], best_by_intent[order]
            if score < self.flows.min_score:
                continue
            rank = (score, intent.priority, -order)
            if best is None or rank > best:
                best, best_match = rank, Match(intent, score)
        return best_match

    def detect_language(self, text: str, words: list[str] | None = None) -> str | None:
        """The language most of ``text``'s known words belong to, or ``None`` if undecided.

        Words both languages share (e.g. "no") count for neither. ``words`` as in :meth:`match`.
        """
        if words is None:
            words = tokens(text)
        counts: dict[str, int] = {}
        language_of_word = self._language_of_word
        for word in words:
            lang = language_of_word.get(word)
            if lang is not None:
                counts[lang] = counts.get(lang, 0) + 1
        if not counts:
            return None
        ranked = sorted(counts.values(), reverse=True)
        if len(ranked) > 1 and ranked[0] == ranked[1]:
            return None
        return max(counts, key=counts.__getitem__)
