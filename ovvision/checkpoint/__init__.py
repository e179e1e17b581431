"""Atomic, strict-by-default checkpointing and resume."""

from .checkpointer import Checkpointer, atomic_write, unwrap_model
from .rng import capture_rng_state, restore_rng_state

__all__ = ["Checkpointer", "atomic_write", "capture_rng_state", "restore_rng_state", "unwrap_model"]
