"""Grounding modules of OVGrounder (OV-VG): query selection, language-guided attention, head."""

from .attention import LanguageGuidedAttention
from .head import GroundingHead, QueryEncoder, box_geometry
from .phrases import noun_phrases
from .query_selection import region_sentence_similarity, select_queries

__all__ = [
    "GroundingHead",
    "LanguageGuidedAttention",
    "QueryEncoder",
    "box_geometry",
    "noun_phrases",
    "region_sentence_similarity",
    "select_queries",
]
