"""The extension's fallbacks and its per-ISA kernel copies, each run in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from tests.ops.helpers import feature_map, in_layout, random_rois, requires_ops
from tests.ops.run_ops import run_ops

REPO = Path(__file__).resolve().parents[2]


def _inputs() -> dict:
    g = torch.Generator().manual_seed(0)
    maps, grads = {}, {}
    for dtype in (torch.float32, torch.float64):
        x = feature_map(2, 37, 11, 13, g).to(dtype)  # channel blocks of 16 or 8, plus a tail
        for layout in ("contiguous", "channels_last"):
            maps[f"{dtype}-{layout}"] = in_layout(x, layout)
            grads[f"{dtype}-{layout}"] = in_layout(torch.rand(25, 37, 3, 4, generator=g), layout)
    features = OrderedDict(
        a=torch.randn(2, 5, 16, 24, generator=g), b=torch.randn(2, 5, 8, 12, generator=g)
    )
    return {
        "maps": maps,
        "grads": {k: v.to(maps[k].dtype) for k, v in grads.items()},
        "rois": random_rois(2, 11, 13, 25, 0.5, g),
        "masks": torch.rand(9, 1, 7, 7, generator=g),
        "boxes": random_rois(1, 20, 30, 9, 1.0, g)[:, 1:],
        "features": features,
        "box_list": [random_rois(1, 32, 48, n, 1.0, g)[:, 1:] for n in (6, 5)],
    }


def _in_fresh_process(
    tmp_path: Path, data: dict, *flags: str, env: dict | None = None
) -> tuple[dict, str]:
    """(results of run_ops in a new interpreter, its stderr)."""
    torch.save(data, tmp_path / "inputs.pt")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.ops.run_ops",
            str(tmp_path / "inputs.pt"),
            str(tmp_path / "results.pt"),
            *flags,
        ],
        check=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=300,
        capture_output=True,
        text=True,
    )
    return torch.load(tmp_path / "results.pt"), done.stderr


def _assert_same_results(ours: dict, theirs: dict, atol: float) -> None:
    for key, value in ours.items():
        if key in ("has_ops", "cpu_isa"):
            continue
        torch.testing.assert_close(theirs[key], value, atol=atol, rtol=0, msg=key)


@pytest.mark.parametrize("flag", ["--without-extension", "--broken-extension"])
def test_without_a_loadable_extension_every_op_falls_back(tmp_path, flag):
    data = _inputs()
    fallback, stderr = _in_fresh_process(tmp_path, data, flag)
    assert fallback["has_ops"] is False and fallback["cpu_isa"] == "none"
    # A missing extension is a supported install; one that fails to load is worth a warning.
    assert ("exists but failed to load" in stderr) == (flag == "--broken-extension")
    _assert_same_results(run_ops(data), fallback, atol=1e-5)


@requires_ops
@pytest.mark.parametrize("isa", ["avx2", "base"])
def test_every_kernel_copy_gives_the_same_results(tmp_path, isa):
    data = _inputs()
    local = run_ops(data)
    other, _ = _in_fresh_process(tmp_path, data, env={"OVVISION_CPU_ISA": isa})
    if local["cpu_isa"] == "base" or (isa == "avx2" and local["cpu_isa"] == "avx2"):
        pytest.skip(f"this CPU runs {local['cpu_isa']}: nothing else to compare with")
    assert other["cpu_isa"] == isa
    _assert_same_results(local, other, atol=1e-5)
