"""Checkpoints that lose nothing: atomic writes, strict loading, full resume state.

A save writes ``<name>.pth`` to a temporary file in the same folder, fsyncs it and
``os.replace``s it into place; only then is the ``last_checkpoint`` pointer (also written
atomically) moved to it. A crash at any point leaves the previous checkpoint and pointer
loadable. Checkpoints are data: they are read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ovvision.utils import comm
from ovvision.utils.file_io import atomic_write

from .rng import capture_rng_state, restore_rng_state

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last_checkpoint"


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a (Distributed)DataParallel wrapper, or the model itself."""
    while isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
        model = model.module
    return model


class Checkpointer:
    """Save and load a model together with other objects that have a ``state_dict``.

    Args:
        model: the model; DDP wrappers are unwrapped.
        save_dir: folder of the checkpoints and the ``last_checkpoint`` pointer.
        save_to_disk: whether this process writes files (default: the main process only).
        allowed_missing_keys: model keys that may be absent from a loaded checkpoint; exact
            names or ``fnmatch`` patterns. Anything else missing is an error.
        allowed_unexpected_keys: checkpoint keys the model may lack (same matching).
        **checkpointables: objects saved and resumed with the model (optimizer, scheduler, the
            trainer itself, ...).
    """

    def __init__(
        self,
        model: nn.Module,
        save_dir: str = "",
        *,
        save_to_disk: bool | None = None,
        allowed_missing_keys: Iterable[str] = (),
        allowed_unexpected_keys: Iterable[str] = (),
        **checkpointables: Any,
    ):
        self.model = unwrap_model(model)
        self.save_dir = save_dir
        self.save_to_disk = comm.is_main_process() if save_to_disk is None else save_to_disk
        self.allowed_missing_keys = tuple(allowed_missing_keys)
        self.allowed_unexpected_keys = tuple(allowed_unexpected_keys)
        self.checkpointables = checkpointables

    # ------------------------------------------------------------------ saving
    def save(self, name: str, **extra: Any) -> str | None:
        """Save ``<save_dir>/<name>.pth`` and point ``last_checkpoint`` at it.

        Must be called on every process under DDP (the RNG states of all ranks are gathered);
        only processes with ``save_to_disk`` write. Returns the path written, or None.
        """
        rng_states = comm.all_gather(capture_rng_state())
        if not self.save_dir or not self.save_to_disk:
            return None
        data = {"model": self.model.state_dict(), "rng": rng_states, **extra}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        logger.info("Saving checkpoint to %s", path)
        atomic_write(path, lambda f: torch.save(data, f))
        atomic_write(
            os.path.join(self.save_dir, LAST_CHECKPOINT), lambda f: f.write(basename.encode())
        )
        return path

    # ------------------------------------------------------------------ loading
    def has_checkpoint(self) -> bool:
        return os.path.exists(os.path.join(self.save_dir, LAST_CHECKPOINT))

    def get_checkpoint_file(self) -> str:
        """Path of the checkpoint ``last_checkpoint`` points at ("" if there is none)."""
        pointer = os.path.join(self.save_dir, LAST_CHECKPOINT)
        try:
            with open(pointer, encoding="utf-8") as f:
                return os.path.join(self.save_dir, f.read().strip())
        except FileNotFoundError:
            return ""

    def get_all_checkpoint_files(self) -> list[str]:
        """Every ``*.pth`` in ``save_dir``, sorted by name."""
        if not os.path.isdir(self.save_dir):
            return []
        names = sorted(f for f in os.listdir(self.save_dir) if f.endswith(".pth"))
        return [os.path.join(self.save_dir, f) for f in names]

    def resume_or_load(self, path: str, *, resume: bool = True) -> dict[str, Any]:
        """Resume everything from the last checkpoint if asked and present; else load ``path``.

        Loading ``path`` restores the model weights only (fine-tuning / evaluation).
        Returns the checkpoint's remaining entries (e.g. ``iteration``).
        """
        if resume and self.has_checkpoint():
            return self.load(self.get_checkpoint_file())
        return self.load(path, checkpointables=[])

    def load(self, path: str, checkpointables: list[str] | None = None) -> dict[str, Any]:
        """Load a checkpoint into the model and the named checkpointables.

        Args:
            path: checkpoint file; "" means start from scratch (logged).
            checkpointables: names to restore; None restores all of them plus the RNG states
                (a full resume).
        Returns:
            The checkpoint's entries that were not consumed.
        """
        if not path:
            logger.info("No checkpoint given: the model keeps its initialisation.")
            return {}
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        logger.info("Loading checkpoint from %s", path)
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict):
            raise ValueError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
        state = ckpt.pop("model") if "model" in ckpt else _as_plain_state_dict(ckpt, path)
        self.load_model_state(state, source=path)
        full_resume = checkpointables is None
        for key in self.checkpointables if full_resume else checkpointables:
            if key in ckpt:
                self.checkpointables[key].load_state_dict(ckpt.pop(key))
            else:
                logger.warning("%s has no '%s' state; it keeps its current state", path, key)
        rng_states = ckpt.pop("rng", None)
        if full_resume and rng_states is not None:
            if len(rng_states) == comm.get_world_size():
                restore_rng_state(rng_states[comm.get_rank()])
            else:
                logger.warning(
                    "%s holds RNG states of %d processes but %d are running; RNGs not restored",
                    path,
                    len(rng_states),
                    comm.get_world_size(),
                )
        return ckpt

    def load_model_state(self, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Strictly load model weights; only the allowed keys may be missing or unexpected."""
        state = _strip_prefix(state, "module.")
        own = self.model.state_dict()
        mismatched = [
            f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
            for k, v in state.items()
            if k in own and tuple(v.shape) != tuple(own[k].shape)
        ]
        if mismatched:
            raise ValueError(f"{source}: shape mismatch for " + "; ".join(mismatched))
        result = self.model.load_state_dict(state, strict=False)
        problems = []
        for kind, keys, allowed in (
            ("missing", result.missing_keys, self.allowed_missing_keys),
            ("unexpected", result.unexpected_keys, self.allowed_unexpected_keys),
        ):
            skipped = [k for k in keys if _matches(k, allowed)]
            if skipped:
                logger.info("%s: %s keys allowed and skipped: %s", source, kind, skipped)
            bad = [k for k in keys if not _matches(k, allowed)]
            if bad:
                problems.append(f"{kind} keys {bad}")
        if problems:
            raise KeyError(
                f"{source} does not match the model: "
                + "; ".join(problems)
                + " (loading is strict; list keys that may differ in "
                "MODEL.WEIGHTS_ALLOWED_MISSING / MODEL.WEIGHTS_ALLOWED_UNEXPECTED)"
            )


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(key == p or fnmatch.fnmatchcase(key, p) for p in patterns)


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _as_plain_state_dict(ckpt: dict[str, Any], path: str) -> dict[str, torch.Tensor]:
    """A checkpoint without a "model" entry must itself be a state dict of tensors."""
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state = dict(ckpt)
        ckpt.clear()
        return state
    raise KeyError(f"{path} has no 'model' entry and is not a plain state dict of tensors")
