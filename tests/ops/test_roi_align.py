"""roi_align against the float64 reference and torchvision, forward and backward."""

from __future__ import annotations

import pytest
import torch
import torchvision

from ovvision.ops import roi_align
from tests.ops.helpers import CONFIGS, LAYOUTS, feature_map, in_layout, random_rois, requires_ops
from tests.ops.reference import roi_align_float64

pytestmark = requires_ops

SCALE = 0.5
ATOL = {torch.float32: 1e-5, torch.float64: 1e-10, torch.float16: 4e-3, torch.bfloat16: 5e-3}
SAMPLING_RATIOS = (-1, 1, 2, 3)


def _inputs(config: str, seed: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    c = CONFIGS[config]
    g = torch.Generator().manual_seed(seed)
    x = feature_map(c["batch"], c["channels"], c["height"], c["width"], g)
    rois = random_rois(c["batch"], c["height"], c["width"], c["num_rois"], SCALE, g)
    return x, rois, c["output_size"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", list(ATOL))
@pytest.mark.parametrize("sampling_ratio", SAMPLING_RATIOS)
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_forward_matches_float64_reference(config, aligned, sampling_ratio, dtype, layout):
    x, rois, size = _inputs(config, seed=sampling_ratio + 7 * aligned)
    x = x.to(dtype)
    out = roi_align(in_layout(x, layout), rois, size, SCALE, sampling_ratio, aligned)
    expected = roi_align_float64(x, rois, size, SCALE, sampling_ratio, aligned)
    assert out.dtype == dtype
    assert out.shape == expected.shape
    assert out.is_contiguous(
        memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format
    )
    torch.testing.assert_close(out.double(), expected, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sampling_ratio", SAMPLING_RATIOS)
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_forward_matches_torchvision(config, aligned, sampling_ratio, dtype):
    x, rois, size = _inputs(config, seed=11)
    x, rois = x.to(dtype), rois.to(dtype)
    expected = torchvision.ops.roi_align(x, rois, size, SCALE, sampling_ratio, aligned)
    for layout in ("contiguous", "channels_last"):
        out = roi_align(in_layout(x, layout), rois, size, SCALE, sampling_ratio, aligned)
        torch.testing.assert_close(out, expected, atol=ATOL[dtype], rtol=0)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", list(ATOL))
@pytest.mark.parametrize("sampling_ratio", SAMPLING_RATIOS)
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_backward_matches_float64_reference(config, aligned, sampling_ratio, dtype, layout):
    x, rois, size = _inputs(config, seed=3 + sampling_ratio)
    x = x.to(dtype)
    grad_out = torch.rand(
        rois.size(0), x.size(1), *size, generator=torch.Generator().manual_seed(5)
    )
    x_op = in_layout(x, layout).detach().requires_grad_()
    out = roi_align(x_op, rois, size, SCALE, sampling_ratio, aligned)
    (grad,) = torch.autograd.grad(out, x_op, grad_out.to(dtype).to(memory_format=out_format(out)))
    x_ref = x.double().requires_grad_()
    ref = roi_align_float64(x_ref, rois, size, SCALE, sampling_ratio, aligned)
    (expected,) = torch.autograd.grad(ref, x_ref, grad_out.double())
    assert grad.dtype == dtype
    # A pixel's gradient sums many bins and can exceed 1: low precision also needs a relative
    # tolerance of about one rounding of the result.
    rtol = {torch.float16: 1e-3, torch.bfloat16: 8e-3}.get(dtype, 0.0)
    torch.testing.assert_close(grad.double(), expected, atol=ATOL[dtype], rtol=rtol)


def out_format(t: torch.Tensor) -> torch.memory_format:
    channels_last = not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


@pytest.mark.parametrize("config", list(CONFIGS))
def test_backward_accepts_any_grad_layout(config):
    """sum() hands the backward an expanded (stride 0) gradient; channels-last input too."""
    x, rois, size = _inputs(config, seed=21)
    for layout in ("contiguous", "channels_last"):
        x_op = in_layout(x, layout).detach().requires_grad_()
        roi_align(x_op, rois, size, SCALE, 2, True).sum().backward()
        x_ref = x.double().requires_grad_()
        roi_align_float64(x_ref, rois, size, SCALE, 2, True).sum().backward()
        torch.testing.assert_close(x_op.grad.double(), x_ref.grad, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 3, 16, 37, 48])
def test_channel_counts_around_the_block_size(channels):
    """Channel blocks of 16 (float) with ragged tails, and the few-channel planar path."""
    g = torch.Generator().manual_seed(channels)
    x = feature_map(2, channels, 9, 11, g)
    rois = random_rois(2, 9, 11, 20, 1.0, g)
    out = roi_align(x, rois, (4, 3), 1.0, 2, True)
    expected = roi_align_float64(x, rois, (4, 3), 1.0, 2, True)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)
    out_cl = roi_align(in_layout(x, "channels_last"), rois, (4, 3), 1.0, 2, True)
    torch.testing.assert_close(out_cl.double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_results_do_not_depend_on_thread_count(config):
    """Every output (and every input gradient) is summed by one thread in a fixed order."""
    x, rois, size = _inputs(config, seed=9)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            x_op = x.clone().requires_grad_()
            out = roi_align(x_op, rois, size, SCALE, -1, True)
            (grad,) = torch.autograd.grad(out, x_op, torch.ones_like(out))
            results.append((out, grad))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize(
    ("path", "layout", "seed"),
    [(path, "contiguous", seed) for path in ("planar", "blocked") for seed in (0, 1, 2)]
    + [("blocked", "channels_last", 0)],
)
def test_gradcheck_float64(path, layout, seed):
    g = torch.Generator().manual_seed(seed)
    # Three channels always take the planar path; five channels with many ROIs the blocked one
    # (and a channels-last gradient always takes the blocked backward).
    shape, num_rois = ((1, 3, 6, 7), 2) if path == "planar" else ((2, 5, 5, 6), 6)
    x = in_layout(torch.rand(*shape, generator=g, dtype=torch.float64), layout)
    rois = random_rois(shape[0], shape[2], shape[3], num_rois, 1.0, g).double()
    x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: roi_align(t, rois, (2, 2), 1.0, -1 if seed else 2, bool(seed % 2)),
        (x,),
        fast_mode=seed > 0,
    )


def test_gradgradcheck_float64():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 4, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    rois = random_rois(2, 4, 5, 6, 1.0, g).double()
    assert torch.autograd.gradgradcheck(
        lambda t: roi_align(t, rois, (2, 2), 1.0, 2, True), (x,), fast_mode=True
    )
