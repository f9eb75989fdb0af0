"""Did you mean: a few close names from an index, cheap however many names there are."""

from __future__ import annotations

import difflib
import heapq
import itertools
from collections.abc import Collection, Iterable


def did_you_mean(word: object, choices: Iterable[str] | Names) -> str:
    if not isinstance(word, str):  # a YAML key may be a number: no name is close to it
        return ""
    names = choices if isinstance(choices, Names) else Names(choices)
    close = names.close(word)
    return f" (did you mean {close!r}?)" if close is not None else ""


def suggest(
    word: object,
    choices: Iterable[str] | Names,
    *,
    listing: str = "expected one of",
    limit: int | None = None,
) -> str:
    """A "did you mean" when something is close, else the list of choices (the first
    ``limit`` of them; a file's own keys are few and listed whole)."""
    names = choices if isinstance(choices, Names) else Names(choices)
    close = did_you_mean(word, names)
    if close:
        return close
    if not names.names:
        return " (none are defined)"
    return f" ({listing}: {short_list(names.names, limit)})"


#: The most names a message lists ("defined: ...", "it has: ..."); the rest are counted.
_LISTED = 10


def short_list(names: Collection[str], limit: int | None = None) -> str:
    """``a, b, c``, or the first _LISTED and a count: one problem stays one short line
    when a namespace has thousands of interfaces or a lab thousands of namespaces."""
    listed = limit or _LISTED
    shown = ", ".join(itertools.islice(names, listed))
    if len(names) <= listed:
        return shown
    return f"{shown}, … and {len(names) - listed:,} more"


#: Up to this many names, difflib compares a word with every one, as it always did.
_SMALL = 64
#: How many candidates the index proposes to difflib for one word.
_CANDIDATES = 8
#: How many bigram postings one lookup may read, rarest bigrams first.
_GRAM_BUDGET = 256
#: Pads a name's ends for its bigrams: not a character any checked name may hold.
_PAD_START, _PAD_END = "\x00", "\x01"


class Names:
    """Names, indexed for "did you mean" so that a lookup costs about the same however
    many names there are.

    ``difflib.get_close_matches`` compares a word with every name: a file in which
    each of N references is misspelt cost N x N comparisons (64 s at 2,000
    namespaces).  Beyond _SMALL names the index first proposes a few candidates, and
    difflib picks among those only, with its usual cutoff:

    - names that share a one-deletion form with the word (SymSpell): each typo of one
      character, a letter wrong, missing, extra, or two letters swapped, is found;
    - when there is none, names sharing the word's rarest bigrams, reading at most
      _GRAM_BUDGET postings, for names further off.  A bigram shared by thousands of
      names ("re" in ``red0`` ... ``red4999``) tells little and is skipped.

    So a suggestion is always one difflib accepts, though with many names a more
    distant one may be missed.  The indexes are built on the first lookup.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.longest = max(map(len, self.names), default=0)
        self._forms: dict[str, list[str]] | None = None
        self._grams: dict[str, list[str]] = {}

    def close(self, word: str) -> str | None:
        """The name most like ``word`` by difflib's measure, if one is like it at all."""
        if 3 * len(word) > 7 * self.longest:
            return None  # difflib's ratio is then below its 0.6 cutoff for every name
        pool = self.names if len(self.names) <= _SMALL else self.candidates(word)
        close = difflib.get_close_matches(word, pool, n=1)
        return close[0] if close else None

    def candidates(self, word: str) -> list[str]:
        forms = self._index()
        score: dict[str, int] = {}
        for form in _deletions(word):
            for name in itertools.islice(forms.get(form, ()), _CANDIDATES):
                score[name] = score.get(name, 0) + 1
        if not score:
            self.share_bigrams(word, score)
        return heapq.nsmallest(
            _CANDIDATES, score, key=lambda name: (-score[name], abs(len(name) - len(word)))
        )

    def share_bigrams(self, word: str, score: dict[str, int]) -> None:
        """Count the bigrams each name shares with ``word``, rarest bigrams first."""
        budget = _GRAM_BUDGET
        for gram in sorted(_bigrams(word), key=lambda g: len(self._grams.get(g, ()))):
            posting = self._grams.get(gram, ())
            if len(posting) > budget:
                break  # every bigram left is at least as common
            budget -= len(posting)
            for name in posting:
                score[name] = score.get(name, 0) + 1

    def _index(self) -> dict[str, list[str]]:
        if self._forms is None:
            self._forms = {}
            for name in self.names:
                for form in _deletions(name):
                    self._forms.setdefault(form, []).append(name)
                for gram in _bigrams(name):
                    self._grams.setdefault(gram, []).append(name)
        return self._forms


def _deletions(word: str) -> set[str]:
    """``word`` and every string one character shorter than it."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def _bigrams(word: str) -> set[str]:
    padded = f"{_PAD_START}{word}{_PAD_END}"
    return {padded[i : i + 2] for i in range(len(padded) - 1)}
