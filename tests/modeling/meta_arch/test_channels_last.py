"""``MODEL.CHANNELS_LAST``: the layout changes where convolutions compute, not what they give."""

from __future__ import annotations

import pytest
import torch

from ovvision.modeling import build_model

from ..helpers import make_item, tiny_config


def _build(channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(tiny_config("MODEL.CHANNELS_LAST", str(channels_last)))


@pytest.fixture(scope="module")
def models() -> tuple[torch.nn.Module, torch.nn.Module]:
    return _build(False), _build(True)


def test_convolution_weights_are_laid_out_channels_last(models):
    plain, fast = models
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(
        c.weight.is_contiguous(memory_format=torch.channels_last) and not c.weight.is_contiguous()
        for c in convs
        if c.weight.shape[-1] > 1 or c.weight.shape[-2] > 1
    )
    assert all(m.weight.is_contiguous() for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    state = plain.state_dict()
    for key, value in fast.state_dict().items():  # same values: a checkpoint fits either layout
        assert torch.equal(value, state[key]), key


def test_detections_are_unchanged_by_the_layout(models):
    outputs = []
    for model in models:
        model.eval()
        with torch.no_grad():
            (out,) = model([make_item(height=64, width=80, seed=5)])
        outputs.append(out["instances"])
    plain, fast = outputs
    assert len(plain) > 0 and len(plain) == len(fast)
    torch.testing.assert_close(
        fast.pred_boxes.tensor, plain.pred_boxes.tensor, atol=1e-4, rtol=1e-5
    )
    torch.testing.assert_close(fast.scores, plain.scores, atol=1e-5, rtol=1e-5)
    assert torch.equal(fast.pred_classes, plain.pred_classes)
    mismatched = (fast.pred_masks != plain.pred_masks).float().mean()
    assert mismatched < 1e-3  # a pixel whose probability sits at the threshold may flip


def test_training_losses_and_gradients_are_unchanged_by_the_layout(models):
    batch = [make_item(boxes=[[4, 6, 40, 30], [30, 20, 70, 60]], classes=[0, 2], seed=1)]
    results = []
    for model in models:
        model.train()
        model.zero_grad()
        torch.manual_seed(1)  # the same regions sampled
        losses = model(batch)
        sum(losses.values()).backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        results.append(({k: v.detach() for k, v in losses.items()}, grads))
    (plain_losses, plain_grads), (fast_losses, fast_grads) = results
    assert plain_losses.keys() == fast_losses.keys()
    for key in plain_losses:
        torch.testing.assert_close(fast_losses[key], plain_losses[key], atol=1e-5, rtol=1e-4)
    assert plain_grads.keys() == fast_grads.keys()
    for name, grad in plain_grads.items():  # summation order differs: compare as vectors
        error = (fast_grads[name] - grad).norm() / grad.norm().clamp(min=1e-12)
        assert error < 1e-4, (name, float(error))
