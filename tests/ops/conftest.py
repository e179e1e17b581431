"""The fallback run: under ``OVVISION_NO_EXT=1`` the op tests check the PyTorch references.

``make test`` runs tests/ops a second time with the extension left unloaded, so every test that
goes through ``ovvision.ops`` checks the fallback an install without ``ovvision._C`` uses. Tests
of the compiled kernels themselves are skipped there, and the fallback's known gaps are expected
failures (strict where every case fails, so a fix turns them red and their entry gets removed).
"""

from __future__ import annotations

import pytest
import torch

from ovvision.ops._extension import extension_disabled

# Tests that call torch.ops.ovvision directly or compare the kernels' per-ISA copies.
KERNEL_ONLY = {
    "test_opcheck",
    "test_bad_arguments_raise_naming_the_argument",
    "test_bad_backward_arguments_raise",
    "test_large_roi_align_gradients_are_zero_outside_the_rois",
    "test_every_kernel_copy_gives_the_same_results",
}

FLOAT16_GAP = (
    "roi_align_reference pools float16 in float16 (torchvision's CPU operator), not in float32 "
    "as roi_align documents"
)
# Known gaps of the fallback: test name -> (which parametrisations, why, strict). Pooling in
# float16 misses the tolerance on most inputs but not all, so that gap cannot be strict.
FALLBACK_GAPS = {
    "test_forward_matches_float64_reference": (
        lambda params: params.get("dtype") == torch.float16,
        FLOAT16_GAP,
        False,
    ),
    "test_backward_matches_float64_reference": (
        lambda params: params.get("dtype") == torch.float16,
        FLOAT16_GAP,
        False,
    ),
    "test_gradgradcheck_float64": (
        lambda params: True,
        "torchvision's roi_align backward has no double backward",
        True,
    ),
}
# Gaps that crash the interpreter: they cannot run even as expected failures.
FALLBACK_CRASHES = {
    "test_non_finite_boxes_pool_nothing": (
        lambda params: params.get("sampling_ratio", -1) > 0,
        "torchvision's CPU roi_align segfaults on non-finite boxes with a fixed sampling ratio",
    ),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not extension_disabled():
        return
    for item in items:
        name = getattr(item, "originalname", item.name)
        params = item.callspec.params if hasattr(item, "callspec") else {}
        if name in KERNEL_ONLY:
            item.add_marker(
                pytest.mark.skip(reason="tests the compiled kernels; OVVISION_NO_EXT=1")
            )
        elif name == "test_without_a_loadable_extension_every_op_falls_back" and (
            params.get("flag") == "--broken-extension"
        ):
            item.add_marker(pytest.mark.skip(reason="OVVISION_NO_EXT=1 never tries to load _C"))
        elif name in FALLBACK_CRASHES and FALLBACK_CRASHES[name][0](params):
            item.add_marker(pytest.mark.skip(reason=f"fallback crash: {FALLBACK_CRASHES[name][1]}"))
        elif name in FALLBACK_GAPS and FALLBACK_GAPS[name][0](params):
            _, reason, strict = FALLBACK_GAPS[name]
            item.add_marker(pytest.mark.xfail(reason=reason, strict=strict))
