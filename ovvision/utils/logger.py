"""Logging set-up: a console handler on the main process and a ``log.txt`` file per rank."""

from __future__ import annotations

import functools
import logging
import os
import sys


@functools.lru_cache  # a logger is configured once per (output, rank, name)
def setup_logger(
    output: str | None = None, distributed_rank: int = 0, name: str = "ovvision"
) -> logging.Logger:
    """Configure and return the ``name`` logger.

    Args:
        output: a directory (``log.txt`` inside it) or a ``.txt``/``.log`` file; None for no file.
            Rank r > 0 writes to ``<file>.rank{r}``.
        distributed_rank: only rank 0 prints to the console.
        name: logger name; ``"ovvision"`` covers every module of the package.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    fmt = logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s", "%m/%d %H:%M:%S")
    if distributed_rank == 0:
        console = logging.StreamHandler(stream=sys.stdout)
        console.setLevel(logging.INFO)
        console.setFormatter(fmt)
        logger.addHandler(console)
    if output is not None:
        filename = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
        if distributed_rank > 0:
            filename = f"{filename}.rank{distributed_rank}"
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        file_handler = logging.FileHandler(filename, mode="a", encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    return logger
