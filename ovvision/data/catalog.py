"""Name → dataset and name → metadata registries.

``DatasetCatalog`` maps a dataset name to a function returning its ``list[dict]``; the function runs
only when the dataset is asked for, so registering a dataset whose files are absent never fails.
``MetadataCatalog`` maps the same name to a :class:`Metadata` (class names, base/novel split,
evaluator type, file paths). Metadata that lives inside a json file (the class list) is read lazily,
the first time such a field is asked for.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any


class _DatasetCatalog:
    """A global mapping ``name -> callable() -> list[dict]``."""

    def __init__(self) -> None:
        self._loaders: dict[str, Callable[[], list[dict]]] = {}

    def register(self, name: str, func: Callable[[], list[dict]]) -> None:
        """Register ``func`` (called with no arguments) as the loader of dataset ``name``.

        Raises:
            ValueError: ``name`` is already registered (names must be unique).
        """
        if not callable(func):
            raise TypeError(f"DatasetCatalog.register('{name}', func): func must be callable")
        if name in self._loaders:
            raise ValueError(f"Dataset '{name}' is already registered")
        self._loaders[name] = func

    def get(self, name: str) -> list[dict]:
        """Call the loader of ``name`` and return its dataset dicts."""
        if name not in self._loaders:
            raise KeyError(
                f"Dataset '{name}' is not registered; registered datasets: {', '.join(self.list())}"
            )
        return self._loaders[name]()

    def list(self) -> list[str]:
        return sorted(self._loaders)

    def remove(self, name: str) -> None:
        self._loaders.pop(name)

    def __contains__(self, name: str) -> bool:
        return name in self._loaders


class Metadata:
    """Fields describing one dataset, read as attributes (``meta.thing_classes``).

    Fields may be set eagerly with :meth:`set`, or supplied on demand by a loader given to
    :meth:`set_lazy`; the loader runs once, the first time a field not yet set is read.
    """

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_fields", {})
        object.__setattr__(self, "_lazy", None)
        object.__setattr__(self, "_lock", threading.Lock())

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        fields = self._fields
        if key not in fields:
            self._run_lazy_loader()
        if key in fields:
            return fields[key]
        raise AttributeError(
            f"Metadata of dataset '{self.name}' has no field '{key}'; "
            f"available: {', '.join(sorted(fields))}"
        )

    def __setattr__(self, key: str, value: Any) -> None:
        self.set(**{key: value})

    def set(self, **kwargs: Any) -> Metadata:
        """Set fields; changing an existing field to a different value raises ``ValueError``."""
        for key, value in kwargs.items():
            if key == "name":
                raise ValueError("Metadata field 'name' is the dataset name and cannot be set")
            old = self._fields.get(key, value)
            if old != value:
                raise ValueError(
                    f"Metadata field '{key}' of dataset '{self.name}' is already {old!r}; "
                    f"refusing to change it to {value!r}"
                )
            self._fields[key] = value
        return self

    def set_lazy(self, loader: Callable[[], dict[str, Any]]) -> Metadata:
        """Supply more fields later: ``loader()`` returns them, called at most once."""
        object.__setattr__(self, "_lazy", loader)
        return self

    def _run_lazy_loader(self) -> None:
        with self._lock:
            loader = self._lazy
            if loader is None:
                return
            fields = loader()
            object.__setattr__(self, "_lazy", None)
            for key, value in fields.items():
                if key not in self._fields:
                    self._fields[key] = value

    def get(self, key: str, default: Any = None, *, load: bool = True) -> Any:
        """The field ``key`` (running the lazy loader if needed), or ``default``.

        With ``load=False`` only fields already set are looked at (no file is read).
        """
        if not load:
            return self._fields.get(key, default)
        try:
            return getattr(self, key)
        except AttributeError:
            return default

    def as_dict(self) -> dict[str, Any]:
        """Every field (lazy ones included) as a deep-copied dict."""
        self._run_lazy_loader()
        return copy.deepcopy(self._fields)

    def __repr__(self) -> str:
        return f"Metadata(name={self.name!r}, fields={sorted(self._fields)})"


class _MetadataCatalog:
    """A global mapping ``name -> Metadata``; ``get`` creates an empty entry on first use."""

    def __init__(self) -> None:
        self._metadata: dict[str, Metadata] = {}

    def get(self, name: str) -> Metadata:
        if name not in self._metadata:
            self._metadata[name] = Metadata(name)
        return self._metadata[name]

    def list(self) -> list[str]:
        return sorted(self._metadata)

    def remove(self, name: str) -> None:
        self._metadata.pop(name)


DatasetCatalog = _DatasetCatalog()
MetadataCatalog = _MetadataCatalog()
