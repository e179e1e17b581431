"""Loading of the optional C++/CUDA extension ``ovvision._C`` and its fake (meta) kernels.

Importing ``ovvision._C`` registers the ``torch.ops.ovvision.*`` operators. When the extension
was not built (pure-Python install) the ops in :mod:`ovvision.ops` fall back to their references;
when it exists but cannot be loaded (built against another torch, say) a warning says why.
``OVVISION_NO_EXT=1`` leaves it unloaded on purpose, so the references run (the fallback tests).
"""

from __future__ import annotations

import importlib
import logging
import os

import torch

logger = logging.getLogger(__name__)


def extension_disabled() -> bool:
    """Whether ``OVVISION_NO_EXT=1`` asks for the pure-PyTorch references instead of ``_C``."""
    return os.environ.get("OVVISION_NO_EXT", "0") == "1"


def _load() -> bool:
    if extension_disabled():
        return False
    try:
        importlib.import_module("ovvision._C")
    except ModuleNotFoundError as e:
        if e.name != "ovvision._C":
            raise
        return False
    except (ImportError, OSError) as e:
        logger.warning("ovvision._C exists but failed to load (%s); using reference ops", e)
        return False
    return True


_LOADED = _load()


def _kernel_device_types() -> frozenset[str]:
    """Device types with kernels (meta through the fake kernels below; CUDA if built with it)."""
    if not _LOADED:
        return frozenset()
    has_cuda = torch._C._dispatch_has_kernel_for_dispatch_key("ovvision::roi_align", "CUDA")
    return frozenset({"cpu", "meta", "cuda"} if has_cuda else {"cpu", "meta"})


# Fixed at import, so that checking it inside torch.compile'd code is a constant.
_KERNEL_DEVICE_TYPES = _kernel_device_types()


def has_ops() -> bool:
    """Whether the compiled ``torch.ops.ovvision`` operators are available."""
    return _LOADED


def op_supports(device: torch.device) -> bool:
    """Whether the compiled operators have kernels for tensors on ``device``."""
    return device.type in _KERNEL_DEVICE_TYPES


def cpu_isa() -> str:
    """The vector ISA the CPU kernels run with (``avx512``, ``avx2``, ``base``), or ``none``."""
    return torch.ops.ovvision._cpu_isa() if _LOADED else "none"


def is_channels_last(t: torch.Tensor) -> bool:
    """True for a 4-D tensor laid out channels-last and not also plainly contiguous.

    The kernels give their output (and input gradient) this layout, so the fake kernels below
    must decide it the same way.
    """
    return (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    )


def _memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


if _LOADED:

    @torch.library.register_fake("ovvision::roi_align")
    def _roi_align_fake(
        input: torch.Tensor,
        rois: torch.Tensor,
        spatial_scale: float,
        pooled_height: int,
        pooled_width: int,
        sampling_ratio: int,
        aligned: bool,
    ) -> torch.Tensor:
        torch._check(input.dim() == 4, lambda: "ovvision::roi_align: `input` must be 4-D")
        torch._check(
            rois.dim() == 2 and rois.size(1) == 5,
            lambda: "ovvision::roi_align: `rois` must have shape (K, 5)",
        )
        return torch.empty(
            (rois.size(0), input.size(1), pooled_height, pooled_width),
            dtype=input.dtype,
            device=input.device,
            memory_format=_memory_format(is_channels_last(input)),
        )

    @torch.library.register_fake("ovvision::_roi_align_backward")
    def _roi_align_backward_fake(
        grad: torch.Tensor,
        rois: torch.Tensor,
        spatial_scale: float,
        pooled_height: int,
        pooled_width: int,
        batch_size: int,
        channels: int,
        height: int,
        width: int,
        sampling_ratio: int,
        aligned: bool,
    ) -> torch.Tensor:
        torch._check(grad.dim() == 4, lambda: "ovvision::_roi_align_backward: `grad` must be 4-D")
        return torch.empty(
            (batch_size, channels, height, width),
            dtype=grad.dtype,
            device=grad.device,
            memory_format=_memory_format(is_channels_last(grad)),
        )

    @torch.library.register_fake("ovvision::paste_masks")
    def _paste_masks_fake(
        masks: torch.Tensor,
        boxes: torch.Tensor,
        height: int,
        width: int,
        padding: int = 1,
        threshold: float | None = None,
        exact_box: bool = False,
    ) -> torch.Tensor:
        torch._check(
            masks.dim() == 4 and masks.size(1) == 1,
            lambda: "ovvision::paste_masks: `masks` must have shape (N, 1, M_h, M_w)",
        )
        return torch.empty(
            (masks.size(0), 1, height, width),
            dtype=torch.bool if threshold is not None else masks.dtype,
            device=masks.device,
        )
