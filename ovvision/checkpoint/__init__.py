"""Atomic, strict-by-default checkpointing and resume."""

from .checkpointer import Checkpointer, unwrap_model
from .rng import capture_rng_state, restore_rng_state

__all__ = ["Checkpointer", "capture_rng_state", "restore_rng_state", "unwrap_model"]
