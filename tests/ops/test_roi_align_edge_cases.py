"""roi_align on empty and degenerate inputs, bad arguments, opcheck, torch.compile, the module."""

from __future__ import annotations

import pytest
import torch
import torchvision

from ovvision.ops import ROIAlign, roi_align, roi_align_reference
from tests.ops.helpers import feature_map, in_layout, random_rois, requires_ops
from tests.ops.reference import roi_align_float64

pytestmark = requires_ops


def _map(seed: int = 0, shape: tuple[int, int, int, int] = (2, 6, 9, 10)) -> torch.Tensor:
    return feature_map(*shape, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_no_rois_gives_empty_output_and_zero_gradient(layout):
    x = in_layout(_map(), layout).detach().requires_grad_()
    out = roi_align(x, torch.zeros(0, 5), (3, 2), 1.0, 2, True)
    assert out.shape == (0, 6, 3, 2)
    out.sum().backward()
    assert x.grad.shape == x.shape
    assert not x.grad.any()


def test_batch_of_zero_images():
    x = torch.zeros(0, 4, 8, 8, requires_grad=True)
    out = roi_align(x, torch.zeros(0, 5), 2, 1.0, -1, False)
    assert out.shape == (0, 4, 2, 2)
    out.sum().backward()
    assert x.grad.shape == (0, 4, 8, 8)


def test_list_of_empty_boxes():
    out = roi_align(_map(), [torch.zeros(0, 4), torch.zeros(0, 4)], 2, 1.0, 2, True)
    assert out.shape == (0, 6, 2, 2)


@pytest.mark.parametrize("sampling_ratio", [-1, 0])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_zero_area_box_gives_zeros_and_zero_gradient(layout, sampling_ratio):
    """Aligned, adaptive sampling: a point box has no samples (detectron2's ROIAlignV2)."""
    x = in_layout(_map(), layout).detach().requires_grad_()
    rois = torch.tensor([[0, 4.0, 4.0, 4.0, 4.0], [1, 2.0, 3.0, 2.0, 7.0], [1, 1.0, 5.0, 8.0, 5.0]])
    out = roi_align(x, rois, (2, 2), 1.0, sampling_ratio, True)
    assert not out.any()
    out.sum().backward()
    assert not x.grad.any()


def test_zero_area_box_with_fixed_sampling_matches_torchvision():
    """With a fixed sampling ratio the samples collapse onto the point, as in torchvision."""
    x = _map()
    rois = torch.tensor([[0, 4.2, 4.7, 4.2, 4.7], [1, 0.0, 0.0, 0.0, 0.0]])
    for aligned in (True, False):
        out = roi_align(x, rois, (2, 2), 1.0, 2, aligned)
        expected = torchvision.ops.roi_align(x, rois, (2, 2), 1.0, 2, aligned)
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_boxes_partly_and_fully_outside_the_map(layout, aligned):
    x = _map(1)
    rois = torch.tensor(
        [
            [0, -6.0, -5.0, 3.0, 4.0],  # crosses the top-left corner
            [1, 7.0, 6.0, 14.0, 13.0],  # crosses the bottom-right corner
            [0, -20.0, -20.0, -12.0, -11.0],  # fully outside, top-left
            [1, 30.0, 2.0, 40.0, 8.0],  # fully outside, right
            [0, 0.0, 0.0, 10.0, 9.0],  # exactly the map
        ]
    )
    x_op = in_layout(x, layout).detach().requires_grad_()
    out = roi_align(x_op, rois, (3, 3), 1.0, -1, aligned)
    torch.testing.assert_close(
        out.double(), roi_align_float64(x, rois, (3, 3), 1.0, -1, aligned), atol=1e-5, rtol=0
    )
    assert not out[2:4].any()
    (grad,) = torch.autograd.grad(out[2:4].sum(), x_op)
    assert not grad.any()


@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_non_finite_boxes_pool_nothing(sampling_ratio):
    x = _map(5)
    inf, nan = float("inf"), float("nan")
    rois = torch.tensor(
        [[0, 0.0, 0.0, inf, 5.0], [1, nan, 1.0, 4.0, 4.0], [0, -inf, -inf, inf, inf]]
    )
    out = roi_align(x, rois, (2, 2), 1.0, sampling_ratio, True)
    assert out.shape == (3, 6, 2, 2)
    assert torch.isfinite(out).all()


def test_rois_of_another_float_dtype_and_list_format():
    x = _map(2)
    rois = random_rois(2, 9, 10, 7, 1.0, torch.Generator().manual_seed(2))
    out = roi_align(x, rois, 3, 1.0, 2, True)
    torch.testing.assert_close(roi_align(x, rois.double(), 3, 1.0, 2, True), out)
    boxes = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    order = torch.cat([torch.where(rois[:, 0] == i)[0] for i in range(2)])
    torch.testing.assert_close(roi_align(x, boxes, 3, 1.0, 2, True), out[order])


def test_reference_fallback_matches_the_kernels():
    g = torch.Generator().manual_seed(4)
    x = feature_map(2, 17, 12, 13, g)
    rois = random_rois(2, 12, 13, 30, 0.5, g)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        for layout in ("contiguous", "channels_last"):
            xi = in_layout(x.to(dtype), layout)
            out = roi_align(xi, rois, (4, 4), 0.5, -1, True)
            ref = roi_align_reference(xi, rois, (4, 4), 0.5, -1, True)
            assert ref.dtype == out.dtype and ref.stride() == out.stride()
            torch.testing.assert_close(
                out, ref, atol=1e-5 if dtype != torch.bfloat16 else 8e-3, rtol=0
            )


@pytest.mark.parametrize(
    ("make_args", "match"),
    [
        (lambda x, r: (x[0], r, 0.5, 2, 2, 2, True), "`input` must be a 4-D tensor"),
        (lambda x, r: (x, r[:, :4], 0.5, 2, 2, 2, True), r"`rois` must have shape \(K, 5\)"),
        (lambda x, r: (x, r[0], 0.5, 2, 2, 2, True), r"`rois` must have shape \(K, 5\)"),
        (lambda x, r: (x.long(), r, 0.5, 2, 2, 2, True), "`input` must be a floating-point"),
        (lambda x, r: (x, r.long(), 0.5, 2, 2, 2, True), "`rois` must be a floating-point"),
        (lambda x, r: (x, r, 0.5, 0, 2, 2, True), "`pooled_height` and `pooled_width` must be"),
        (lambda x, r: (x, r, -1.0, 2, 2, 2, True), "`spatial_scale` must be a positive"),
        (
            lambda x, r: (x, r + torch.tensor([5.0, 0, 0, 0, 0]), 0.5, 2, 2, 2, True),
            "is not a batch index of `input`",
        ),
        (lambda x, r: (x[:, :, :0], r, 0.5, 2, 2, 2, True), "`input` has an empty spatial size"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(make_args, match):
    x, rois = _map(), torch.tensor([[0, 1.0, 1.0, 5.0, 5.0], [1, 0.0, 2.0, 3.0, 8.0]])
    with pytest.raises(RuntimeError, match=match):
        torch.ops.ovvision.roi_align(*make_args(x, rois))


def test_bad_backward_arguments_raise():
    rois = torch.tensor([[0, 1.0, 1.0, 5.0, 5.0]])
    with pytest.raises(RuntimeError, match="`grad` must have shape"):
        torch.ops.ovvision._roi_align_backward(
            torch.zeros(1, 3, 2, 2), rois, 1.0, 2, 2, 1, 4, 8, 8, 2, True
        )


def test_bad_boxes_in_the_functional_api_raise():
    with pytest.raises(ValueError, match=r"`boxes`\[1\] must have shape \(L, 4\)"):
        roi_align(_map(), [torch.zeros(2, 4), torch.zeros(2, 5)], 2)
    with pytest.raises(ValueError, match="`output_size` must be an int or a pair"):
        roi_align(_map(), torch.zeros(0, 5), (2, 2, 2))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(layout):
    g = torch.Generator().manual_seed(5)
    x = in_layout(feature_map(2, 5, 7, 8, g), layout).requires_grad_()
    rois = random_rois(2, 7, 8, 6, 0.5, g)
    torch.library.opcheck(torch.ops.ovvision.roi_align.default, (x, rois, 0.5, 3, 2, 2, True))
    grad = in_layout(torch.rand(6, 5, 3, 2, generator=g), layout)
    torch.library.opcheck(
        torch.ops.ovvision._roi_align_backward.default,
        (grad, rois, 0.5, 3, 2, 2, 5, 7, 8, -1, False),
    )


def test_torch_compile_forward_and_backward():
    def pool_and_reduce(x: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return (roi_align(x, rois, (3, 3), 0.5, 2, True) ** 2).sum()

    compiled = torch.compile(pool_and_reduce, backend="aot_eager", fullgraph=True, dynamic=True)
    g = torch.Generator().manual_seed(6)
    for num_rois in (5, 9):
        x = feature_map(2, 4, 7, 9, g).requires_grad_()
        rois = random_rois(2, 7, 9, num_rois, 0.5, g)
        loss = compiled(x, rois)
        (grad,) = torch.autograd.grad(loss, x)
        x_eager = x.detach().requires_grad_()
        loss_eager = pool_and_reduce(x_eager, rois)
        (grad_eager,) = torch.autograd.grad(loss_eager, x_eager)
        torch.testing.assert_close(loss, loss_eager)
        torch.testing.assert_close(grad, grad_eager)


def test_module_forwards_and_has_a_readable_repr():
    module = ROIAlign((3, 2), spatial_scale=0.25, sampling_ratio=2, aligned=True)
    assert repr(module) == (
        "ROIAlign(output_size=(3, 2), spatial_scale=0.25, sampling_ratio=2, aligned=True)"
    )
    x = _map(3)
    rois = torch.tensor([[0, 0.0, 0.0, 20.0, 24.0]])
    torch.testing.assert_close(module(x, rois), roi_align(x, rois, (3, 2), 0.25, 2, True))
