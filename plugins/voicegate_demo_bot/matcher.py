"""Recognising an intent and the language of a message by keyword scoring.

Each intent's keyword phrases and example sentences are reduced to *content words* (stop
words removed, accents folded). A keyword phrase scores 1.0 when all its words occur in the
message and 0 otherwise; an example sentence scores the share of its words that occur. The
intent's score is its best phrase; the best intent wins if it reaches ``min_score``, ties
going to the higher ``priority`` and then to the earlier intent in the file.

Words match as :func:`voicegate_demo_bot.text.same_word` says (equal, or sharing a stem).
The phrases' stems are computed once, and each message becomes two sets (its words and its
stems), so matching costs a set look-up per phrase word rather than a comparison with every
word of the message; an index from words and stems to phrases limits the scoring to the
phrases that share a word with the message (the others score 0, below any ``min_score``).
This runs on every message.
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
        # word or stem -> (intent order, phrase) pairs that contain it
        self._by_word: dict[str, list[tuple[int, _Phrase]]] = {}
        self._by_stem: dict[str, list[tuple[int, _Phrase]]] = {}
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
            for phrase in phrases:
                for word, word_stem in set(phrase.words):
                    self._by_word.setdefault(word, []).append((len(self._phrases) - 1, phrase))
                    if word_stem is not None:
                        self._by_stem.setdefault(word_stem, []).append((len(self._phrases) - 1, phrase))
        # Words of one language only: shared words (e.g. "no") say nothing about the language.
        self._own_words = {
            lang: vocab.difference(*(other for o, other in self._vocabulary.items() if o != lang))
            for lang, vocab in self._vocabulary.items()
        }

    def match(self, text: str, words: list[str] | None = None) -> Match | None:
        """The recognised intent of ``text``, or ``None`` below ``min_score``.

        ``words``: ``tokens(text)`` when the caller already has them (one tokenisation per message).
        """
        if words is None:
            words = tokens(text)
        exact = set(words)
        stems = {s for s in map(stem, words) if s is not None}
        candidates: dict[int, _Phrase] = {}  # id(phrase) -> phrase, with its intent's order below
        orders: dict[int, int] = {}
        for key, index in [(w, self._by_word) for w in exact] + [(s, self._by_stem) for s in stems]:
            for order, phrase in index.get(key, ()):
                candidates[id(phrase)], orders[id(phrase)] = phrase, order
        scores: dict[int, float] = {}
        for key, phrase in candidates.items():
            order = orders[key]
            score = _score(phrase, exact, stems)
            if score > scores.get(order, 0.0):
                scores[order] = score
        best: tuple[float, int, int] | None = None
        best_match: Match | None = None
        for order in sorted(scores):
            intent, score = self._phrases[order][0], scores[order]
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
        counts = {lang: sum(1 for w in words if w in own) for lang, own in self._own_words.items()}
        if not counts:
            return None
        ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
        if ranked[0][1] == 0 or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
            return None
        return ranked[0][0]


def _score(phrase: _Phrase, exact: set[str], stems: set[str]) -> float:
    found = sum(1 for w, s in phrase.words if w in exact or (s is not None and s in stems))
    if phrase.exact:
        return 1.0 if found == len(phrase.words) else 0.0
    return found / len(phrase.words)
