"""Language for OV-Shapes: captions, referring expressions and object-crop captions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from .scene import SceneObject

__all__ = [
    "POSITION_MARGIN",
    "article",
    "make_captions",
    "make_expression",
    "object_caption",
    "plural",
]

# Pixels (at 128 x 128) by which a referred object must be further left/right/up/down than every
# other candidate for a position word to identify it.
POSITION_MARGIN = 6.0
_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_AN_WORDS = {"hourglass", "l-shape"}  # words whose spoken form starts with a vowel sound
_PLURALS = {"cross": "crosses", "hourglass": "hourglasses", "pacman": "pacmen"}
_OBJECT_TEMPLATES = (
    "{a} {c}",
    "a photo of {a} {c}",
    "{a} {color} {c}",
    "{a} {size} {color} {c}",
    "{a} {size} {c}",
    "a photo of {a} {color} {c}",
    "{a} {c} shape",
    "{a} {color} {c} shape",
    "the {c}",
    "an image of {a} {size} {color} {c}",
    "{color} {c}",
    "a drawing of {a} {c}",
    "one {color} {c}",
    "a close-up of {a} {size} {c}",
)
_LIST_TEMPLATES = ("{list}", "an image with {list}", "{list} on a {bg} background", "{n}: {list}")
_COUNT_TEMPLATES = ("{counts}", "there {be} {counts}", "a picture of {counts}")


def article(word: str) -> str:
    """``"a"`` or ``"an"`` for the word that follows."""
    return "an" if word[0] in "aeiou" or word in _AN_WORDS else "a"


def plural(name: str) -> str:
    return _PLURALS.get(name, name + "s")


def _fill(template: str, **words: str) -> str:
    """Format ``template`` and replace each ``{a}`` by the article of the word after it."""
    parts = template.format(a="\0", **words).split()
    for i, part in enumerate(parts):
        if part == "\0":
            parts[i] = article(parts[i + 1])
    return " ".join(parts)


def _phrase(obj: SceneObject, use_size: bool, use_color: bool) -> str:
    words = ([obj.size] if use_size else []) + ([obj.color] if use_color else []) + [obj.category]
    return " ".join(words)


def _with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _count(n: int, noun: str) -> str:
    word = _NUMBERS[n] if n < len(_NUMBERS) else str(n)
    return f"{word} {noun if n == 1 else plural(noun)}"


def make_captions(
    rng: np.random.Generator, objects: Sequence[SceneObject], background: str, image_size: int
) -> list[str]:
    """Three captions of a scene: a list of every object, a spatial relation, and counts.

    Every object (novel ones included) is named in the first caption, usually with its colour
    and often with its size.
    """
    listed = [
        _with_article(_phrase(objects[i], rng.random() < 0.5, rng.random() < 0.85))
        for i in rng.permutation(len(objects)).tolist()
    ]
    template = str(rng.choice(_LIST_TEMPLATES))
    first = template.format(list=_join(listed), bg=background, n=_count(len(objects), "shape"))
    counts = [
        _count(n, c) if n > 1 else _with_article(c)
        for c, n in Counter(o.category for o in objects).items()
    ]
    be = "is" if counts[0].split()[0] in ("a", "an") else "are"
    third = str(rng.choice(_COUNT_TEMPLATES)).format(counts=_join(counts), be=be)
    return [first, _relation_caption(rng, objects, image_size), third]


def _relation_caption(
    rng: np.random.Generator, objects: Sequence[SceneObject], image_size: int
) -> str:
    if len(objects) == 1:
        x, y = objects[0].centre()
        rows, cols = ("top", "middle", "bottom"), ("left", "centre", "right")
        row, col = rows[min(int(3 * y / image_size), 2)], cols[min(int(3 * x / image_size), 2)]
        where = "the centre" if (row, col) == ("middle", "centre") else f"the {row} {col}"
        return f"{_with_article(_phrase(objects[0], True, True))} in {where} of the image"
    i, j = rng.choice(len(objects), size=2, replace=False).tolist()
    (xi, yi), (xj, yj) = objects[i].centre(), objects[j].centre()
    dx, dy = xj - xi, yj - yi
    if max(abs(dx), abs(dy)) < POSITION_MARGIN * image_size / 128:
        relation = "next to"
    elif abs(dx) >= abs(dy):
        relation = "to the left of" if dx > 0 else "to the right of"
    else:
        relation = "above" if dy > 0 else "below"
    a = _with_article(_phrase(objects[i], rng.random() < 0.5, True))
    b = _with_article(_phrase(objects[j], rng.random() < 0.5, True))
    rest = len(objects) - 2
    tail = f", with {_count(rest, 'other shape')}" if rest else ""
    return f"{a} {relation} {b}{tail}"


def make_expression(
    rng: np.random.Generator, objects: Sequence[SceneObject], target: int, image_size: int
) -> str | None:
    """A referring expression naming exactly ``objects[target]``, or ``None`` if none exists.

    The expression uses the class and a random uniquely identifying choice of colour and size;
    when even class, colour and size leave several candidates, a position word that singles the
    target out by at least :data:`POSITION_MARGIN` pixels is added.
    """
    obj = objects[target]
    choices = [(False, False), (False, True), (True, False), (True, True)]
    unique = [
        (use_size, use_color)
        for use_size, use_color in choices
        if _matches(objects, obj, use_size, use_color) == [target]
    ]
    if unique:
        use_size, use_color = unique[int(rng.integers(len(unique)))]
        phrase = _phrase(obj, use_size, use_color)
        return phrase if rng.random() < 0.2 else f"the {phrase}"
    candidates = _matches(objects, obj, True, True)
    position = _position_word(rng, objects, candidates, target, image_size)
    if position is None:
        return None
    phrase = _phrase(obj, True, True)
    if len(candidates) == 2:
        side = {"leftmost": "on the left", "rightmost": "on the right"}
        side.update({"topmost": "at the top", "bottommost": "at the bottom"})
        return f"the {phrase} {side[position]}"
    return f"the {position} {phrase}"


def _matches(
    objects: Sequence[SceneObject], obj: SceneObject, use_size: bool, use_color: bool
) -> list[int]:
    return [
        i
        for i, o in enumerate(objects)
        if o.category == obj.category
        and (not use_size or o.size == obj.size)
        and (not use_color or o.color == obj.color)
    ]


def _position_word(
    rng: np.random.Generator,
    objects: Sequence[SceneObject],
    candidates: list[int],
    target: int,
    image_size: int,
) -> str | None:
    margin = POSITION_MARGIN * image_size / 128
    centres = {i: objects[i].centre() for i in candidates}
    others = [centres[i] for i in candidates if i != target]
    tx, ty = centres[target]
    tests = {
        "leftmost": all(x - tx >= margin for x, _ in others),
        "rightmost": all(tx - x >= margin for x, _ in others),
        "topmost": all(y - ty >= margin for _, y in others),
        "bottommost": all(ty - y >= margin for _, y in others),
    }
    valid = [word for word, ok in tests.items() if ok]
    return str(rng.choice(valid)) if valid else None


def object_caption(rng: np.random.Generator, obj: SceneObject) -> str:
    """A varied caption of one object crop, always naming its class."""
    template = str(rng.choice(_OBJECT_TEMPLATES))
    return _fill(template, c=obj.category, color=obj.color, size=obj.size)
