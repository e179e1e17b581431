"""Atomic writes leave files with the permissions any other program's files get."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn

from ovvision.checkpoint import Checkpointer
from ovvision.evaluation import save_eval_results
from ovvision.utils.file_io import atomic_write


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for a test and restore it afterwards."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def _mode(path: os.PathLike | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _write(path: os.PathLike | str, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077], ids=oct)
def test_a_new_file_gets_0666_minus_the_umask(tmp_path, umask, mask):
    umask(mask)
    _write(tmp_path / "out.json", b"{}")
    assert _mode(tmp_path / "out.json") == 0o666 & ~mask
    assert (tmp_path / "out.json").read_bytes() == b"{}"
    # What a plain open() creates under the same umask, for comparison.
    (tmp_path / "plain.json").write_bytes(b"{}")
    assert _mode(tmp_path / "out.json") == _mode(tmp_path / "plain.json")


@pytest.mark.parametrize("existing", [0o600, 0o640, 0o664], ids=oct)
def test_replacing_a_file_keeps_its_mode(tmp_path, umask, existing):
    path = tmp_path / "eval_results.json"
    path.write_bytes(b"old")
    os.chmod(path, existing)
    _write(path, b"new")
    assert path.read_bytes() == b"new"
    assert _mode(path) == existing


def test_checkpoints_and_eval_results_are_readable_by_others(tmp_path, umask):
    ckpt = Checkpointer(nn.Linear(2, 1), str(tmp_path))
    ckpt.save("model_final")
    results = save_eval_results({"bbox": {"AP50": 1.0}}, tmp_path)
    for path in (tmp_path / "model_final.pth", tmp_path / "last_checkpoint", results):
        assert _mode(path) == 0o644, path
    assert torch.load(tmp_path / "model_final.pth", weights_only=True)


def test_a_failed_write_leaves_no_temporary_file(tmp_path, umask):
    path = tmp_path / "out.bin"
    _write(path, b"old")

    def fail(f) -> None:
        f.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]
