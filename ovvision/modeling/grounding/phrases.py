"""A small rule-based noun-phrase chunker for phrase-localisation mode.

It splits a sentence at prepositions, conjunctions, verbs of position and punctuation, and keeps
each remaining span that has a content word; a leading "of"-less relation ("left of", "next to")
is dropped with the split word. Good for captions like "a small red star left of the blue ring";
not a parser.
"""

from __future__ import annotations

import re

__all__ = ["noun_phrases"]

_SPLIT_WORDS = frozenset(
    """and or but with without of to in on at by near above below under over behind beside
    between from into onto next left right top bottom front is are was were has have that which
    who while where besides inside outside around across along against among beneath""".split()
)
_FUNCTION_WORDS = frozenset("a an the this that these those its their his her some".split())


def noun_phrases(sentence: str) -> list[str]:
    """Noun phrases of ``sentence`` in order (may be empty).

    Example: ``"the small red star left of the ring, and a cross"`` ->
    ``["the small red star", "the ring", "a cross"]``.
    """
    phrases: list[str] = []
    current: list[str] = []
    for word in re.findall(r"[\w'-]+|[^\w\s]", sentence.lower()):
        if word in _SPLIT_WORDS or not re.match(r"[\w'-]", word):
            _close(current, phrases)
            current = []
        else:
            current.append(word)
    _close(current, phrases)
    return phrases


def _close(words: list[str], phrases: list[str]) -> None:
    if any(w not in _FUNCTION_WORDS for w in words):
        phrases.append(" ".join(words))
