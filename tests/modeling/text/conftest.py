"""Fixtures: a random tiny open_clip model saved to disk, and encoders loaded from it."""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch

from ovvision.modeling.text import create_text_encoder, register_project_model_configs

TINY = "OVShapes-CLIP-Tiny"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny CLIP saved as a plain open_clip state dict (like downloaded weights)."""
    register_project_model_configs()
    torch.manual_seed(0)
    model = open_clip.create_model(TINY)
    path = tmp_path_factory.mktemp("weights") / "tiny_clip.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture()
def encoder(tiny_checkpoint: Path):
    return create_text_encoder(TINY, pretrained=tiny_checkpoint)


class CallCounter:
    """Counts forward calls of a real module through a forward hook."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, *_: object) -> None:
        self.calls += 1


@pytest.fixture()
def count_calls():
    counters: list[CallCounter] = []

    def attach(module: torch.nn.Module) -> CallCounter:
        counters.append(CallCounter(module))
        return counters[-1]

    yield attach
    for counter in counters:
        counter.handle.remove()
