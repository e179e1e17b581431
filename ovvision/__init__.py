"""ovvision: open-vocabulary detection, instance segmentation and grounding."""

__version__ = "0.1.0"
