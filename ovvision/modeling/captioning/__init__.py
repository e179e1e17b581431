"""Caption generation (CGG): the decoder over region embeddings, its tokens, decoding and loss.

Importing this package registers ``CaptionGenerationLoss`` in ``AUXILIARY_LOSS_REGISTRY``.
"""

from .decoder import CaptionDecoder
from .decoding import beam_search, greedy_decode
from .loss import CaptionGenerationLoss, pad_regions
from .tokens import PAD_TOKEN, CaptionTokenizer

__all__ = [
    "PAD_TOKEN",
    "CaptionDecoder",
    "CaptionGenerationLoss",
    "CaptionTokenizer",
    "beam_search",
    "greedy_decode",
    "pad_regions",
]
