"""Checkpoints are atomic, strict by default, and data only (RELIABILITY 20, 21)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from ovvision.checkpoint import Checkpointer


class _Exploding:
    """Pickling it fails half-way through a save (after tensors were written)."""

    def __reduce__(self):
        raise RuntimeError("disk full (simulated)")


class _ExplodingState:
    def state_dict(self) -> dict:
        return {"big": torch.randn(1000, 100), "bad": _Exploding()}

    def load_state_dict(self, state: dict) -> None:
        pass


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_failed_save_keeps_previous_checkpoint_and_pointer(tmp_path):
    model = _model()
    ckpt = Checkpointer(model, str(tmp_path))
    ckpt.save("model_0000009", iteration=9)
    good = {k: v.clone() for k, v in model.state_dict().items()}

    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    broken = Checkpointer(model, str(tmp_path), extra=_ExplodingState())
    with pytest.raises(RuntimeError, match="disk full"):
        broken.save("model_0000019", iteration=19)

    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000009.pth"]
    fresh = _model()
    extra = Checkpointer(fresh, str(tmp_path)).load(ckpt.get_checkpoint_file())
    assert extra["iteration"] == 9
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, good[k]), k


def test_process_killed_mid_save_leaves_previous_checkpoint_loadable(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from torch import nn
        from ovvision.checkpoint import Checkpointer

        class Kill:
            def __reduce__(self):
                os.kill(os.getpid(), signal.SIGKILL)

        class State:
            def state_dict(self):
                return {{"big": torch.randn(2000, 500), "kill": Kill()}}
            def load_state_dict(self, s):
                pass

        model = nn.Linear(3, 2)
        Checkpointer(model, {str(tmp_path)!r}).save("model_0000004", iteration=4)
        Checkpointer(model, {str(tmp_path)!r}, state=State()).save("model_0000009", iteration=9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert not (tmp_path / "model_0000009.pth").exists()
    leftovers = [f for f in os.listdir(tmp_path) if ".tmp" in f]
    assert leftovers, "the killed save should have been writing a temporary file"
    ckpt = Checkpointer(nn.Linear(3, 2), str(tmp_path))
    assert ckpt.get_checkpoint_file().endswith("model_0000004.pth")
    assert ckpt.load(ckpt.get_checkpoint_file())["iteration"] == 4


def test_pointer_is_written_last_and_names_the_newest(tmp_path):
    ckpt = Checkpointer(_model(), str(tmp_path))
    ckpt.save("a")
    ckpt.save("b")
    assert (tmp_path / "last_checkpoint").read_text() == "b.pth"
    assert [os.path.basename(f) for f in ckpt.get_all_checkpoint_files()] == ["a.pth", "b.pth"]


def test_loading_is_strict_and_names_the_keys(tmp_path):
    src = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    path = Checkpointer(src, str(tmp_path)).save("src")
    bigger = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(2, 5))
    with pytest.raises(KeyError, match=r"missing keys \['2.weight', '2.bias'\]") as info:
        Checkpointer(bigger).load(path)
    assert "src.pth" in str(info.value)

    # An explicit allow-list (names or patterns) lets them through.
    Checkpointer(bigger, allowed_missing_keys=["2.*"]).load(path)
    assert torch.equal(bigger[0].weight, src[0].weight)

    smaller = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(KeyError, match=r"unexpected keys \['1.weight', '1.bias'\]"):
        Checkpointer(smaller).load(path)
    Checkpointer(smaller, allowed_unexpected_keys=["1.weight", "1.bias"]).load(path)


def test_allowed_keys_that_were_skipped_are_logged_by_name(tmp_path, caplog):
    src = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    path = Checkpointer(src, str(tmp_path)).save("src")
    logger = logging.getLogger("ovvision.checkpoint")
    caplog.set_level(logging.INFO, logger=logger.name)
    logger.addHandler(caplog.handler)  # whether or not a run's set-up stopped propagation
    try:
        bigger = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(2, 5))
        Checkpointer(bigger, allowed_missing_keys=["2.*"]).load(path)
        smaller = nn.Sequential(nn.Linear(3, 4))
        Checkpointer(smaller, allowed_unexpected_keys=["1.weight", "1.bias"]).load(path)
        exact = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        Checkpointer(exact, allowed_missing_keys=["2.*"]).load(path)
    finally:
        logger.removeHandler(caplog.handler)
    skipped = sorted({r.getMessage() for r in caplog.records if "skipped" in r.getMessage()})
    assert skipped == [
        f"{path}: missing keys allowed and skipped: ['2.weight', '2.bias']",
        f"{path}: unexpected keys allowed and skipped: ['1.weight', '1.bias']",
    ]


def test_shape_mismatch_is_an_error(tmp_path):
    path = Checkpointer(nn.Linear(3, 4), str(tmp_path)).save("src")
    with pytest.raises(ValueError, match=r"weight: checkpoint \(4, 3\) vs model \(5, 3\)"):
        Checkpointer(nn.Linear(3, 5)).load(path)


def test_plain_and_ddp_prefixed_state_dicts_load(tmp_path):
    src = nn.Linear(3, 2)
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, tmp_path / "ddp.pth")
    dst = nn.Linear(3, 2)
    Checkpointer(dst).load(str(tmp_path / "ddp.pth"))
    assert torch.equal(dst.weight, src.weight)


def test_checkpoints_are_data_not_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": nn.Linear(3, 2).state_dict(), "payload": _model()}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        Checkpointer(nn.Linear(3, 2)).load(str(path))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        Checkpointer(nn.Linear(3, 2)).load(str(tmp_path / "nope.pth"))
