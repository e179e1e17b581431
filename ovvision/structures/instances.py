"""Per-image collections of instances whose fields all have the same length."""

from __future__ import annotations

import itertools
from typing import Any

import torch


class Instances:
    """Fields (boxes, scores, classes, masks, ...) of the N instances of one image.

    Every field must have ``len(field) == N``; setting a field of another length raises. Fields can
    be tensors, :class:`~ovvision.structures.Boxes`, lists, or anything with ``__len__`` and
    ``__getitem__``.

    Args:
        image_size: ``(height, width)`` of the image the instances belong to.
        **fields: initial fields.
    """

    def __init__(self, image_size: tuple[int, int], **fields: Any):
        self._image_size = (int(image_size[0]), int(image_size[1]))
        self._fields: dict[str, Any] = {}
        for name, value in fields.items():
            self.set(name, value)

    @property
    def image_size(self) -> tuple[int, int]:
        return self._image_size

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, value)
        else:
            self.set(name, value)

    def __getattr__(self, name: str) -> Any:
        if name == "_fields" or name not in self._fields:
            raise AttributeError(f"Cannot find field '{name}' in the given Instances!")
        return self._fields[name]

    def set(self, name: str, value: Any) -> None:
        """Set a field; its length must equal the length of the existing fields."""
        n = len(value)
        if self._fields and len(self) != n:
            raise ValueError(
                f"Adding field '{name}' of length {n} to Instances of length {len(self)}"
            )
        self._fields[name] = value

    def has(self, name: str) -> bool:
        return name in self._fields

    def remove(self, name: str) -> None:
        del self._fields[name]

    def get(self, name: str) -> Any:
        return self._fields[name]

    def get_fields(self) -> dict[str, Any]:
        return self._fields

    def to(self, *args: Any, **kwargs: Any) -> Instances:
        """A copy with every field that has ``.to`` moved/cast."""
        ret = Instances(self._image_size)
        for k, v in self._fields.items():
            ret.set(k, v.to(*args, **kwargs) if hasattr(v, "to") else v)
        return ret

    def __getitem__(self, item: int | slice | torch.Tensor) -> Instances:
        """Index every field; an int returns an Instances of length 1."""
        if isinstance(item, int):
            if item >= len(self) or item < -len(self):
                raise IndexError("Instances index out of range!")
            item = slice(item, None, len(self)) if item != -1 else slice(item, None)
        ret = Instances(self._image_size)
        for k, v in self._fields.items():
            if isinstance(v, list):
                ret.set(k, _index_list(v, item))
            else:
                ret.set(k, v[item])
        return ret

    def __len__(self) -> int:
        for v in self._fields.values():
            return len(v)
        return 0

    def __iter__(self):
        raise NotImplementedError("Instances cannot be iterated; index it or read its fields")

    @staticmethod
    def cat(instance_lists: list[Instances]) -> Instances:
        """Concatenate Instances of the same image size with the same fields."""
        if not instance_lists:
            raise ValueError("Instances.cat needs at least one Instances")
        if len(instance_lists) == 1:
            return instance_lists[0]
        image_size = instance_lists[0].image_size
        for i in instance_lists[1:]:
            if i.image_size != image_size:
                raise ValueError("Instances.cat: all Instances must have the same image_size")
        ret = Instances(image_size)
        for k, v0 in instance_lists[0]._fields.items():
            values = [i.get(k) for i in instance_lists]
            if isinstance(v0, torch.Tensor):
                ret.set(k, torch.cat(values, dim=0))
            elif isinstance(v0, list):
                ret.set(k, list(itertools.chain(*values)))
            elif hasattr(type(v0), "cat"):
                ret.set(k, type(v0).cat(values))
            else:
                raise ValueError(f"Instances.cat does not know how to concatenate field '{k}'")
        return ret

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}: {v}" for k, v in self._fields.items())
        return (
            f"Instances(num_instances={len(self)}, image_height={self._image_size[0]}, "
            f"image_width={self._image_size[1]}, fields=[{fields}])"
        )


def _index_list(values: list, item: slice | torch.Tensor) -> list:
    if isinstance(item, slice):
        return values[item]
    item = torch.as_tensor(item)
    if item.dtype == torch.bool:
        return [v for v, keep in zip(values, item.tolist()) if keep]
    return [values[i] for i in item.tolist()]
