"""Auto-labelling: a trained open-vocabulary detector turns image collections into COCO datasets.

``tools/autolabel.py`` is the command line; the pieces are usable alone:
:func:`list_images` (folders, globs, lists; local or fsspec URLs), :class:`Labeller` (one model,
callable on Ray Data batches), :func:`run_local` / :func:`run_ray` (resumable runs writing
shards), :func:`merge_shards` (the final COCO file, ``classes.txt`` and ``skipped.txt``).
"""

from .inputs import IMAGE_EXTENSIONS, list_images, load_image
from .labeller import Labeller, LabelSettings, cap_detections, detection_records
from .merge import ANNOTATIONS_FILE, CLASSES_FILE, SKIPPED_FILE, merge_shards, to_coco
from .run import JOB_FILE, SHARDS_DIR, JobMismatchError, open_job, pending_keys, run_local, run_ray
from .shards import COLUMNS, FORMATS, read_shards, write_shard

__all__ = [
    "ANNOTATIONS_FILE",
    "CLASSES_FILE",
    "COLUMNS",
    "FORMATS",
    "IMAGE_EXTENSIONS",
    "JOB_FILE",
    "JobMismatchError",
    "LabelSettings",
    "Labeller",
    "SHARDS_DIR",
    "SKIPPED_FILE",
    "cap_detections",
    "detection_records",
    "list_images",
    "load_image",
    "merge_shards",
    "open_job",
    "pending_keys",
    "read_shards",
    "run_local",
    "run_ray",
    "to_coco",
    "write_shard",
]
