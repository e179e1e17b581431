"""Post-processing of detections: rescaling to the original image, mask pasting."""

from .detector_postprocess import detector_postprocess, paste_masks

__all__ = ["detector_postprocess", "paste_masks"]
