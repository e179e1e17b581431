"""Post-processing of detections: rescaling to the original image, mask pasting (through
``ovvision.ops.paste_masks``)."""

from .detector_postprocess import detector_postprocess

__all__ = ["detector_postprocess"]
