"""The training engine: loop and hooks, run set-up and command-line flags, multi-process launch."""

from .dataset_vocabulary import dataset_vocabulary, use_training_vocabulary
from .defaults import (
    create_ddp_model,
    default_argument_parser,
    default_hooks,
    default_setup,
    default_writers,
    resume_or_load,
)
from .hooks import EvalHook, IterationTimer, LRScheduler, PeriodicCheckpointer, PeriodicWriter
from .launch import launch, launch_from_args
from .train_loop import AMPTrainer, HookBase, SimpleTrainer, TrainerBase

__all__ = [
    "AMPTrainer",
    "EvalHook",
    "HookBase",
    "IterationTimer",
    "LRScheduler",
    "PeriodicCheckpointer",
    "PeriodicWriter",
    "SimpleTrainer",
    "TrainerBase",
    "create_ddp_model",
    "dataset_vocabulary",
    "default_argument_parser",
    "default_hooks",
    "default_setup",
    "default_writers",
    "launch",
    "launch_from_args",
    "resume_or_load",
    "use_training_vocabulary",
]
