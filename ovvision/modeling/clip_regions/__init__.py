"""The frozen CLIP on regions: CLIP embeddings of boxes, and CLIP score fusion at inference."""

from .box_embedder import ClipBoxEmbedder, build_clip_box_embedder
from .score_fusion import ClipScoreFusion, build_clip_score_fusion, clip_class_probs, fuse_scores

__all__ = [
    "ClipBoxEmbedder",
    "ClipScoreFusion",
    "build_clip_box_embedder",
    "build_clip_score_fusion",
    "clip_class_probs",
    "fuse_scores",
]
