"""What every ovvision script shares: detectron2's command-line flags, run set-up, DDP wrapping."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import torch
from torch import nn

from ovvision.checkpoint import Checkpointer
from ovvision.config import CfgNode, ConfigError, load_config
from ovvision.data.datasets.register_from_cfg import (
    DatasetEntry,
    DatasetEntryError,
    register_datasets_from_cfg,
)
from ovvision.utils import comm
from ovvision.utils.env import collect_env_info, seed_all_rng
from ovvision.utils.events import (
    CommonMetricPrinter,
    EventWriter,
    JSONWriter,
    TensorboardWriter,
)
from ovvision.utils.file_io import atomic_write
from ovvision.utils.logger import setup_logger

from .config_paths import absolute_config_paths, check_config_files, require_file
from .hooks import EvalHook, IterationTimer, LRScheduler, PeriodicCheckpointer, PeriodicWriter
from .train_loop import HookBase


def default_argument_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """detectron2's flags: config file, resume, eval-only, distributed layout, trailing opts."""
    parser = argparse.ArgumentParser(
        epilog=epilog
        or (
            "Examples:\n"
            "  Train:     python tools/train_net.py --config-file cfg.yaml\n"
            "  2 CPU procs: python tools/train_net.py --config-file cfg.yaml --num-gpus 2 "
            "MODEL.DEVICE cpu\n"
            "  Evaluate:  python tools/train_net.py --config-file cfg.yaml --eval-only "
            "MODEL.WEIGHTS model_final.pth\n"
            "  Resume:    python tools/train_net.py --config-file cfg.yaml --resume\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume from OUTPUT_DIR's last checkpoint if there is one, else load MODEL.WEIGHTS",
    )
    parser.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS only")
    parser.add_argument(
        "--num-gpus", type=int, default=1, help="processes per machine (GPUs, or CPU workers)"
    )
    parser.add_argument("--num-machines", type=int, default=1, help="machines in the job")
    parser.add_argument("--machine-rank", type=int, default=0, help="this machine's rank")
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="tcp://host:port of machine rank 0, the same on every machine ('auto': a free local "
        "port, one machine only); the wait for all machines is bounded by "
        "$OVVISION_RENDEZVOUS_TIMEOUT seconds (default 600)",
    )
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="config overrides as KEY VALUE pairs, e.g. SOLVER.BASE_LR 0.01",
    )
    return parser


def default_setup(cfg: CfgNode, args: argparse.Namespace | None = None) -> int:
    """Prepare a run: output dir, logging, environment report, ``config.yaml``, seeding.

    ``OUTPUT_DIR/config.yaml`` holds the paths of the path keys (see
    :mod:`ovvision.engine.config_paths`: weights, text encoder weights, jsons, embeddings,
    ``DATASETS.REGISTER`` files, ...) as absolute paths, so it works from any folder.

    Returns the seed this process used (``cfg.SEED + rank``, or a random one if SEED < 0).
    """
    output_dir = cfg.OUTPUT_DIR
    rank = comm.get_rank()
    if comm.is_main_process() and output_dir:
        os.makedirs(output_dir, exist_ok=True)
    comm.synchronize()
    setup_logger(output_dir or None, distributed_rank=rank)
    logger = logging.getLogger("ovvision")
    logger.info("Rank of current process: %d. World size: %d", rank, comm.get_world_size())
    logger.info("Environment info:\n%s", collect_env_info())
    logger.info("Command line: %s", " ".join(sys.argv))
    if args is not None and getattr(args, "config_file", ""):
        with open(args.config_file, encoding="utf-8") as f:
            logger.info("Contents of %s:\n%s", args.config_file, f.read())
    if comm.is_main_process() and output_dir:
        path = os.path.join(output_dir, "config.yaml")
        text = absolute_config_paths(cfg).dump()
        atomic_write(path, lambda f: f.write(text.encode()))
        logger.info("Full config saved to %s", path)
    seed = seed_all_rng(-1 if cfg.SEED < 0 else cfg.SEED + rank)
    logger.info("Seed of this process: %d", seed)
    torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK
    if cfg.DETERMINISTIC:
        torch.use_deterministic_algorithms(True)
    return seed


# Errors a command-line tool reports as one line (no traceback): a missing file, an unknown or
# malformed config key or value, a bad DATASETS.REGISTER entry.
USER_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, ConfigError, DatasetEntryError)


def exit_with_error(message: object, prog: str | None = None) -> NoReturn:
    """Print ``prog: error: message`` on one line of stderr and exit with code 2 (argparse's)."""
    prog = prog or os.path.basename(sys.argv[0])
    text = " ".join(str(message).splitlines())
    print(f"{prog}: error: {text}", file=sys.stderr)
    raise SystemExit(2)


def run_tool(
    main: Callable[[], int | None],
    prog: str | None = None,
    user_errors: tuple[type[Exception], ...] = (),
) -> NoReturn:
    """Run a command-line tool's ``main``; exit with its return code (None = 0).

    A :data:`USER_ERRORS` exception (or one of ``user_errors``) becomes the one-line
    ``prog: error: ...`` message and exit code 2, without a traceback.
    """
    try:
        code = main()
    except USER_ERRORS + tuple(user_errors) as e:
        exit_with_error(e, prog)
    raise SystemExit(code or 0)


def load_tool_config(config_file: str, opts: Sequence[str] = ()) -> CfgNode:
    """:func:`~ovvision.config.load_config`, with a missing ``--config-file`` or a value of the
    wrong type (``DATASETS.REGISTER name=...`` without the tuple brackets) as user errors."""
    if config_file:
        require_file(config_file, "--config-file")
    try:
        return load_config(config_file, opts)
    except ValueError as e:  # fvcore's type check of an override: it names the key
        raise ConfigError(
            f"{e} (list values are Python literals on the command line, e.g. "
            "DATASETS.TEST \"('my_val',)\")"
        ) from None


def prepare_datasets_and_files(
    cfg: CfgNode, datasets: Mapping[str, str] | None = None
) -> list[DatasetEntry]:
    """Register ``DATASETS.REGISTER`` and check the files the run will read.

    Args:
        cfg: the run's config.
        datasets: dataset names the run reads, each with the key or argument that named it;
            None = ``DATASETS.TRAIN`` and ``DATASETS.TEST``.

    Returns:
        The registered entries.

    Raises:
        DatasetEntryError, ConfigError, MissingFileError: naming the key (see
            :func:`~ovvision.engine.config_paths.check_config_files`).
    """
    entries = register_datasets_from_cfg(cfg)
    if datasets is None:
        datasets = {name: "DATASETS.TRAIN" for name in cfg.DATASETS.TRAIN}
        for name in cfg.DATASETS.TEST:
            datasets.setdefault(name, "DATASETS.TEST")
    check_config_files(cfg, datasets)
    return entries


def default_writers(output_dir: str, max_iter: int, tensorboard: bool = False) -> list[EventWriter]:
    """Console progress line, ``metrics.jsonl`` and optionally TensorBoard events."""
    os.makedirs(output_dir, exist_ok=True)
    writers: list[EventWriter] = [
        CommonMetricPrinter(max_iter),
        JSONWriter(os.path.join(output_dir, "metrics.jsonl")),
    ]
    if tensorboard:
        writers.append(TensorboardWriter(output_dir))
    return writers


def create_ddp_model(model: nn.Module, **kwargs: object) -> nn.Module:
    """Wrap ``model`` in DistributedDataParallel when more than one process runs."""
    if comm.get_world_size() == 1:
        return model
    if next(model.parameters()).device.type == "cuda":
        kwargs.setdefault("device_ids", [comm.get_local_rank()])
    return nn.parallel.DistributedDataParallel(model, **kwargs)


def default_hooks(
    cfg: CfgNode,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    checkpointer: Checkpointer,
    eval_function: Callable[[], Mapping[str, Any]] | None = None,
) -> list[HookBase]:
    """The standard hooks of a training run, in the order they must run.

    Timer, LR schedule, periodic checkpoints (``SOLVER.CHECKPOINT_PERIOD``), evaluation
    (``TEST.EVAL_PERIOD`` and at the end) when ``eval_function`` is given, and — on the main
    process, last so that evaluation results are included — the metric writers.
    """
    hooks: list[HookBase] = [
        IterationTimer(),
        LRScheduler(optimizer, scheduler),
        PeriodicCheckpointer(
            checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, max_to_keep=cfg.SOLVER.MAX_TO_KEEP
        ),
    ]
    if eval_function is not None:
        hooks.append(EvalHook(cfg.TEST.EVAL_PERIOD, eval_function))
    if comm.is_main_process():
        writers = default_writers(cfg.OUTPUT_DIR, cfg.SOLVER.MAX_ITER, cfg.TENSORBOARD)
        hooks.append(PeriodicWriter(writers, period=cfg.LOG_PERIOD))
    return hooks


def resume_or_load(checkpointer: Checkpointer, weights: str, resume: bool) -> int:
    """Load weights or resume a run; returns the iteration training should start from.

    With ``resume`` and a checkpoint in the checkpointer's folder, everything is restored
    (model, every checkpointable, RNG states) and training continues after the saved
    iteration. Otherwise only the model weights of ``weights`` are loaded ("" = keep the
    initialisation) and training starts at 0.
    """
    if resume and checkpointer.has_checkpoint():
        extra = checkpointer.load(checkpointer.get_checkpoint_file())
        return int(extra.get("iteration", -1)) + 1
    checkpointer.load(weights, checkpointables=[])
    return 0
