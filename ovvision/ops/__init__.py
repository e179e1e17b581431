"""Region operators: ROIAlign, multi-scale ROIAlign and mask pasting.

Each op runs the compiled ``torch.ops.ovvision`` kernels (``ovvision._C``, C++/CUDA) when the
extension is built and supports the tensors' device, and its reference (torchvision's operator
or plain PyTorch, identical semantics) otherwise; ``has_ops()`` says which. Large CPU outputs
(32 MiB and more) of the compiled ops reuse the memory of freed ones, up to a limit: see
``output_cache_stats``, ``set_output_cache_limit`` and ``empty_output_cache``.
"""

from ovvision.ops._extension import (
    OutputCacheStats,
    cpu_isa,
    empty_output_cache,
    has_ops,
    output_cache_stats,
    set_output_cache_limit,
)
from ovvision.ops.paste_masks import paste_masks, paste_masks_reference
from ovvision.ops.poolers import MultiScaleROIAlign
from ovvision.ops.roi_align import ROIAlign, boxes_to_rois, roi_align, roi_align_reference

__all__ = [
    "MultiScaleROIAlign",
    "OutputCacheStats",
    "ROIAlign",
    "boxes_to_rois",
    "cpu_isa",
    "empty_output_cache",
    "has_ops",
    "output_cache_stats",
    "paste_masks",
    "paste_masks_reference",
    "roi_align",
    "roi_align_reference",
    "set_output_cache_limit",
]
