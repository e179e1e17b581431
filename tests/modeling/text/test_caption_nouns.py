"""Caption nouns: vocabulary classes named by a caption (lemmas, multi-word names, synonyms)."""

from __future__ import annotations

import pytest

from ovvision.modeling.text.caption_nouns import NounExtractor, caption_object_name, caption_words
from ovvision.structures import ClassList

CLASSES = ClassList(
    ["circle", "l-shape", "traffic light", "light", "sofa", "box"],
    [[], [], [], [], ["couch"], []],
    [False, True, False, False, True, False],
)


@pytest.fixture(scope="module")
def nouns() -> NounExtractor:
    return NounExtractor(CLASSES)


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("two circles and three boxes", (0, 5)),  # plurals, -es plural
        ("an L-shape", (1,)),  # hyphenated multi-word name
        ("L shapes on a sofa", (1, 4)),  # the same words without the hyphen, plural
        ("a traffic light next to a light", (2, 3)),  # the longest name wins, then the short one
        ("A COUCH, a Circle; and a BOX!", (4, 0, 5)),  # synonym, case, punctuation, order
        ("circle circle circles", (0,)),  # unique
        ("a dog on the grass", ()),  # no known noun
        ("", ()),
        ("Ｃｉｒｃｌｅｓ — ein Kreis, café", (0,)),  # full-width letters (NFKC), unicode text
    ],
)
def test_classes_named_by_a_caption(nouns, caption, expected):
    found = nouns(caption)
    assert found.classes == expected and found.other_nouns == ()


def test_other_nouns_for_the_open_ended_variant():
    found = NounExtractor(CLASSES, other_nouns=True)("three small red dogs below a circle, dogs")
    assert found.classes == (0,)
    assert found.other_nouns == ("dog",)  # not "three", "small", "red", "below"; unique
    assert len(found) == 2


def test_results_are_cached_per_caption(nouns):
    first = nouns("a sofa")
    assert nouns("a sofa") is first


def test_words_split_at_punctuation_and_underscores():
    assert caption_words("Traffic_light,l-shape's") == ["traffic", "light", "l", "shape", "s"]


def test_a_name_shared_by_two_classes_is_refused():
    with pytest.raises(ValueError, match="'couch'"):
        NounExtractor(ClassList(["sofa", "couch"], [["couch"], []]))


@pytest.mark.parametrize(
    "caption, name",
    [
        ("a photo of a small purple ring", "ring"),  # framing "... of", adjectives dropped
        ("a close-up of a large red crescent", "crescent"),  # "crescent" is an adjective too
        ("an l-shape shape", "l shape"),  # a letter modifier kept, the generic head dropped
        ("a hexagon shape", "hexagon"),
        ("the t-shape", "t shape"),  # "shape" is the head here: nothing to drop
        ("a pacman shape", "pacman"),  # a word lemminflect does not know is a noun
        ("two stars", "star"),  # number word, plural
        ("a man riding a horse on a beach", "man"),  # the phrase ends at the gerund
        ("a group of people", "people"),
        ("a traffic light next to a tree", "traffic light"),  # noun modifier kept
        ("on the left", ""),  # no noun phrase
        ("", ""),
    ],
)
def test_object_name_of_a_caption_reads_no_vocabulary(caption, name):
    assert caption_object_name(caption) == name
