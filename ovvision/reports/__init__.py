"""Reports people can look at: an evaluation's per-class AP, curves, confusions and misses."""

from .analysis import ImageMatches, count_confusions, match_images, missed_objects, pr_curve
from .detection_report import (
    REPORT_FILE,
    write_detection_report,
    write_evaluator_report,
    write_metrics_report,
)

__all__ = [
    "REPORT_FILE",
    "ImageMatches",
    "count_confusions",
    "match_images",
    "missed_objects",
    "pr_curve",
    "write_detection_report",
    "write_evaluator_report",
    "write_metrics_report",
]
