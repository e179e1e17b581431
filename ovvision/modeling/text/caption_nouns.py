"""The nouns of a caption: vocabulary classes it names (multi-word names and synonyms too) and,
for the open-ended variant, its other nouns.

Words are lower-cased (Unicode NFKC), split at anything that is not a letter or digit (so
``"l-shape"`` and ``"l shape"`` are the same two words) and lemmatised as nouns with lemminflect,
whose lemma tables ship in its wheel (nothing is downloaded). A class matches when the lemmas of
one of its names appear consecutively; the longest match wins (``"traffic light"`` before
``"light"``). Without a part-of-speech tagger, an "other noun" is a word that lemminflect knows
as a noun and never as an adjective, adverb or auxiliary (``"red"``, ``"small"``, ``"below"``
are left out), and that is not a number word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from lemminflect import getAllLemmas, getLemma

from ovvision.structures import ClassList

__all__ = [
    "CaptionNouns",
    "NounExtractor",
    "caption_object_name",
    "caption_words",
    "lemmatize_noun",
]

_WORD = re.compile(r"[^\W_]+")
_NOT_NOUN_TAGS = ("ADJ", "ADV", "AUX", "DET", "PRON", "ADP", "CCONJ", "NUM")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve dozen".split()
)
_DETERMINERS = frozenset("a an the this that these those some several many".split()) | _NUMBER_WORDS
# closed-class words (lemminflect's tables hold few of them) that end a noun phrase
_FUNCTION_WORDS = frozenset(
    "with of and or but at by for from into onto over under near next to on in inside outside "
    "behind beside besides above below between among against along across around through "
    "toward towards upon within without while where which who that it its their his her "
    "is are was were be being been has have had".split()
)
_GENERIC_HEADS = frozenset("shape object thing item".split())  # "a hexagon shape" -> "hexagon"


@lru_cache(maxsize=65536)
def lemmatize_noun(word: str) -> str:
    """The singular form of a lower-case word read as a noun (``"boxes"`` -> ``"box"``)."""
    lemmas = getLemma(word, upos="NOUN")
    return lemmas[0] if lemmas else word


def caption_words(text: str) -> list[str]:
    """Lower-cased NFKC words of ``text``; punctuation, hyphens and underscores separate words."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


@lru_cache(maxsize=65536)
def _is_other_noun(word: str) -> bool:
    if word.isdigit() or word in _NUMBER_WORDS or len(word) < 2:
        return False
    tags = getAllLemmas(word)
    return "NOUN" in tags and not any(t in tags for t in _NOT_NOUN_TAGS)


def _noun_like(word: str) -> bool:
    """A noun, or a word lemminflect does not know (a name such as "pacman"), not a letter."""
    tags = getAllLemmas(word)
    return "NOUN" in tags if tags else len(word) > 1


@lru_cache(maxsize=65536)
def caption_object_name(text: str) -> str:
    """The object a short caption is about, without a vocabulary: the head noun of its first
    noun phrase (after a framing "... of"), with the noun modifiers just before it, singular.

    Made for alt-text-like captions of one object (``"a photo of a small purple ring"`` ->
    ``"ring"``, ``"an l-shape shape"`` -> ``"l shape"``, ``"two stars"`` -> ``"star"``);
    adjectives and determiners are dropped, a trailing generic head (``"shape"``) after a noun
    too. Without a part-of-speech tagger a long scene caption may give a wrong head. ``""``
    when the caption has no such phrase.
    """
    words = caption_words(text)
    if "of" in words:  # "a close-up of a star", "a drawing of a heart"
        words = words[len(words) - words[::-1].index("of") :]
    phrase: list[str] = []
    for word in words:
        if word in _DETERMINERS or word.isdigit():
            if phrase:
                break
            continue
        tags = getAllLemmas(word)
        gerund = word.endswith("ing") and tags.get("VERB", (word,))[0] != word  # "riding"
        not_noun = "NOUN" not in tags and any(t in tags for t in ("ADV", "VERB", "AUX"))
        if word in _FUNCTION_WORDS or gerund or not_noun:
            break
        phrase.append(word)
    if len(phrase) > 1 and phrase[-1] in _GENERIC_HEADS and _noun_like(phrase[-2]):
        phrase.pop()
    if not phrase:
        return ""
    modifiers: list[str] = []
    for word in reversed(phrase[:-1]):  # the noun modifiers right before the head
        if "ADJ" in getAllLemmas(word):
            break
        modifiers.insert(0, word)
    return " ".join([*modifiers, lemmatize_noun(phrase[-1])])


@dataclass(frozen=True)
class CaptionNouns:
    """What a caption names.

    Attributes:
        classes: indices of the vocabulary classes it names, in order of first mention, unique.
        other_nouns: lemmas of its other nouns, in order, unique (empty unless asked for).
    """

    classes: tuple[int, ...]
    other_nouns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.classes) + len(self.other_nouns)


class NounExtractor:
    """Finds the classes of a vocabulary (and other nouns) named by captions, cached per caption.

    Args:
        classes: the vocabulary; every name and synonym of a class matches it.
        other_nouns: also return the caption's nouns that name no class (open-ended variant).
        cache_size: captions whose result is kept (0 = no cache).

    Raises:
        ValueError: two classes share a name (after lemmatisation), which would make a caption's
            noun ambiguous.
    """

    def __init__(self, classes: ClassList, other_nouns: bool = False, cache_size: int = 100_000):
        self.classes = classes
        self.other_nouns = other_nouns
        self._phrases: dict[tuple[str, ...], int] = {}
        for index, (name, synonyms) in enumerate(zip(classes.names, classes.synonyms)):
            for phrase in (name, *synonyms):
                key = tuple(lemmatize_noun(w) for w in caption_words(phrase))
                if not key:
                    continue
                owner = self._phrases.setdefault(key, index)
                if owner != index:
                    raise ValueError(
                        f"vocabulary classes '{classes.names[owner]}' and '{name}' share the "
                        f"name '{phrase}'; a caption noun would be ambiguous"
                    )
        self._longest = max((len(k) for k in self._phrases), default=0)
        self._cache: dict[str, CaptionNouns] = {}
        self._cache_size = cache_size

    def __call__(self, caption: str) -> CaptionNouns:
        """The classes and other nouns ``caption`` names (see :class:`CaptionNouns`)."""
        found = self._cache.get(caption)
        if found is None:
            found = self._extract(caption)
            if len(self._cache) < self._cache_size:
                self._cache[caption] = found
        return found

    def _extract(self, caption: str) -> CaptionNouns:
        words = caption_words(caption)
        lemmas = [lemmatize_noun(w) for w in words]
        classes: list[int] = []
        others: list[str] = []
        i = 0
        while i < len(lemmas):
            for length in range(min(self._longest, len(lemmas) - i), 0, -1):
                index = self._phrases.get(tuple(lemmas[i : i + length]))
                if index is not None:
                    if index not in classes:
                        classes.append(index)
                    i += length
                    break
            else:
                if self.other_nouns and _is_other_noun(words[i]) and lemmas[i] not in others:
                    others.append(lemmas[i])
                i += 1
        return CaptionNouns(tuple(classes), tuple(others))

    def extract_all(self, captions: Sequence[str]) -> list[CaptionNouns]:
        """:meth:`__call__` of each caption."""
        return [self(c) for c in captions]
