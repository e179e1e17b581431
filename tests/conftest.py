"""Session-wide checks and fixtures shared by every test folder."""

from __future__ import annotations

import dataclasses
import glob
import importlib
import json
import os
import time
from pathlib import Path

import pytest
from filelock import FileLock

from tests._tools import run_tool

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _extension_problem() -> str | None:
    """Why this test run cannot go on with the install it finds, or None if it can.

    setup.py builds ``ovvision._C`` whenever ovvision/csrc has C++ sources, unless
    ``OVVISION_NO_EXT=1``; the same rule decides here whether the extension must load. Skipping
    the op tests of a broken build would report it green.
    """
    from ovvision.ops import has_ops
    from ovvision.ops._extension import extension_disabled

    if extension_disabled():
        if has_ops():
            return "OVVISION_NO_EXT=1 but ovvision._C was loaded: the fallback run would test it"
        return None
    if has_ops() or not glob.glob(
        os.path.join(REPO, "ovvision", "csrc", "**", "*.cpp"), recursive=True
    ):
        return None
    try:
        importlib.import_module("ovvision._C")
        reason = "it imports, yet registers no operators"
    except ImportError as e:
        reason = str(e)
    return (
        f"ovvision._C did not load ({reason}) although ovvision/csrc has kernels to build: "
        "run `make install` to rebuild it, or set OVVISION_NO_EXT=1 to test the PyTorch "
        "fallbacks only"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires_ops: tests ovvision.ops (the kernels; the references under OVVISION_NO_EXT=1)",
    )
    problem = _extension_problem()
    if problem is not None:
        raise pytest.UsageError(problem)


@dataclasses.dataclass(frozen=True)
class TrainedClip:
    """The tiny CLIP of configs/ov_shapes/clip_tiny.yaml, trained once per test run (the
    pytest-xdist workers share one training: the first to need it trains under a file lock, the
    others wait for it and read its result).

    Attributes:
        env: environment for the tools: ``OVVISION_DATASETS`` (OV-Shapes seed 0 at its default
            size) and ``PYTHONPATH``.
        data_root: the ``OVVISION_DATASETS`` folder (``ov_shapes/`` inside).
        weights: the open_clip checkpoint (``model_final.pt``) that detectors load.
        zero_shot: ``zero_shot.json`` of the run (top-1 on the val object crops).
        minutes: wall-clock minutes of the training command (start-up included).
    """

    env: dict[str, str]
    data_root: Path
    weights: Path
    zero_shot: dict
    minutes: float


def _run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder every pytest-xdist worker of this run shares (the session's own
    base folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _train_tiny_clip(root: Path, env: dict[str, str]) -> float:
    """Generate OV-Shapes (seed 0) under ``root/datasets`` and train the tiny CLIP into
    ``root/clip``; returns the training's wall-clock minutes."""
    run_tool(
        ["tools/make_ov_shapes.py", "--output", str(root / "datasets" / "ov_shapes"),
         "--seed", "0", "--no-progress"],
        env, timeout=1200,
    )  # fmt: skip
    start = time.perf_counter()
    run_tool(
        ["tools/train_clip.py", "--config-file", "configs/ov_shapes/clip_tiny.yaml",
         "OUTPUT_DIR", str(root / "clip")],
        env, timeout=3600,
    )  # fmt: skip
    return (time.perf_counter() - start) / 60


@pytest.fixture(scope="session")
def trained_tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> TrainedClip:
    """OV-Shapes (seed 0) generated and the tiny CLIP trained on it, once for every slow test
    that needs them (several minutes on 2 cores), whichever worker runs them.

    ``done.json`` is written only after a training that finished, so a worker whose training
    failed leaves the next one to try again rather than to read half a result.
    """
    root = _run_root(tmp_path_factory) / "trained_tiny_clip"
    root.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "OVVISION_DATASETS": str(root / "datasets"),
        "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),
    }
    done = root / "done.json"
    with FileLock(str(root / "training.lock")):
        if not done.exists():
            minutes = _train_tiny_clip(root, env)
            done.write_text(json.dumps({"minutes": minutes}))
        minutes = json.loads(done.read_text())["minutes"]
    return TrainedClip(
        env=env,
        data_root=root / "datasets",
        weights=root / "clip" / "model_final.pt",
        zero_shot=json.loads((root / "clip" / "zero_shot.json").read_text()),
        minutes=minutes,
    )
