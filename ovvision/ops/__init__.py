"""Region operators: ROIAlign, multi-scale ROIAlign and mask pasting.

Each op runs the compiled ``torch.ops.ovvision`` kernels (``ovvision._C``, C++/CUDA) when the
extension is built and supports the tensors' device, and its reference (torchvision's operator
or plain PyTorch, identical semantics) otherwise; ``has_ops()`` says which.
"""

from ovvision.ops._extension import cpu_isa, has_ops
from ovvision.ops.paste_masks import paste_masks, paste_masks_reference
from ovvision.ops.poolers import MultiScaleROIAlign
from ovvision.ops.roi_align import ROIAlign, boxes_to_rois, roi_align, roi_align_reference

__all__ = [
    "MultiScaleROIAlign",
    "ROIAlign",
    "boxes_to_rois",
    "cpu_isa",
    "has_ops",
    "paste_masks",
    "paste_masks_reference",
    "roi_align",
    "roi_align_reference",
]
