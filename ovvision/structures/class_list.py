"""ClassList: a vocabulary before embedding (names, synonyms, novel flags), and how users type one.

Users name classes in three ways, all accepted wherever a vocabulary is asked for
(:func:`as_class_list`): a :class:`ClassList`; a list of names where each entry may carry
synonyms after ``|`` (``["mug|cup", "lamp"]``); or a comma-separated spec string or a text file
with one entry per line (:meth:`ClassList.parse`, the demo's ``--custom-vocabulary``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ClassList", "as_class_list", "is_vocabulary_file"]

SYNONYM_SEPARATOR = "|"


def is_vocabulary_file(spec: str) -> bool:
    """Whether a vocabulary spec names a text file rather than classes: it ends in ``.txt``, or
    it has a folder separator and is an existing file. A bare word is a class name even when a
    file of that name happens to exist in the current folder (``--custom-vocabulary person``)."""
    if spec.endswith(".txt"):
        return True
    return ("/" in spec or os.sep in spec) and os.path.isfile(os.path.expanduser(spec))


@dataclass
class ClassList:
    """C class names, per-class synonyms and per-class novel flags (unseen in training).

    Attributes:
        names: C class names.
        synonyms: per class, extra names averaged into its text embedding.
        is_novel: per class, True if the class has no training annotations.
    """

    names: list[str]
    synonyms: list[list[str]] = field(default_factory=list)
    is_novel: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = list(self.names)
        self.synonyms = [list(s) for s in self.synonyms] or [[] for _ in self.names]
        self.is_novel = [bool(x) for x in self.is_novel] or [False] * len(self.names)
        if not len(self.names) == len(self.synonyms) == len(self.is_novel):
            raise ValueError(
                f"ClassList got {len(self.names)} names, {len(self.synonyms)} synonym lists and "
                f"{len(self.is_novel)} novel flags"
            )

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_entries(cls, entries: Sequence[str], where: str = "vocabulary") -> ClassList:
        """Classes from ``"name|synonym|..."`` entries; blank entries are skipped.

        Raises:
            ValueError: no class name in ``entries`` (the message names ``where``).
        """
        names, synonyms = [], []
        for entry in entries:
            parts = [p.strip() for p in str(entry).split(SYNONYM_SEPARATOR) if p.strip()]
            if parts:
                names.append(parts[0])
                synonyms.append(parts[1:])
        if not names:
            raise ValueError(f"{where} has no class names (it is empty)")
        return cls(names, synonyms)

    @classmethod
    def parse(cls, spec: str) -> ClassList:
        """Parse ``"name|synonym, name2"`` or a text file with one ``name|synonym`` per line
        (a spec ending in ``.txt``, or a path with a folder separator; see
        :func:`is_vocabulary_file`).

        Lines of a file starting with ``#`` are comments.

        Raises:
            FileNotFoundError: ``spec`` ends in ``.txt`` but no such file exists.
            ValueError: no class names in ``spec``.
        """
        if is_vocabulary_file(spec):
            path = os.path.expanduser(spec)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"custom vocabulary file '{spec}' does not exist")
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
            entries = [line for line in lines if not line.lstrip().startswith("#")]
            return cls.from_entries(entries, f"vocabulary file '{spec}'")
        return cls.from_entries(spec.split(","), f"custom vocabulary {spec!r}")

    @property
    def class_prompts(self) -> list[list[str]]:
        """Per class, its name followed by its synonyms."""
        return [[n, *s] for n, s in zip(self.names, self.synonyms)]


def as_class_list(classes: ClassList | Sequence[str]) -> ClassList:
    """A :class:`ClassList` from a ClassList or a list of ``"name|synonym"`` entries.

    Raises:
        TypeError: a single string (ambiguous: use ``ClassList.parse`` for a spec string).
        ValueError: no class names.
    """
    if isinstance(classes, ClassList):
        return classes
    if isinstance(classes, str):
        raise TypeError(
            "a vocabulary is a list of class names, a ClassList or a Vocabulary, not a str "
            f"({classes!r}); use ClassList.parse() for a comma-separated spec"
        )
    return ClassList.from_entries(list(classes))
