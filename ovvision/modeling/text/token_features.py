"""Per-token features of referring expressions from an open_clip text tower.

Grounding needs more than the pooled sentence embedding: the language-guided attention of
OVGrounder attends to every token of the expression. :func:`encode_expressions` runs the text
tower once and returns both, with a mask of the real (non-padding) tokens. An expression longer
than the tokenizer's context length raises :class:`ExpressionTooLongError` naming it, unless the
caller asks for truncation, in which case the truncated items are reported in ``truncated``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from open_clip.transformer import text_global_pool
from torch import nn
from torch.nn import functional as F

from .encoder import TextEncoder

__all__ = ["ExpressionFeatures", "ExpressionTooLongError", "encode_expressions"]


class ExpressionTooLongError(ValueError):
    """An expression has more tokens than the text encoder's context length."""


@dataclass
class ExpressionFeatures:
    """Text features of N expressions padded to the context length L.

    Attributes:
        tokens: ``Tensor[N, L, W]`` token features (W: the text transformer's width).
        mask: ``BoolTensor[N, L]``, True for real tokens (start/end included), False for padding.
        sentence: ``Tensor[N, D]`` unit-norm sentence embeddings in the joint CLIP space.
        truncated: indices of the expressions that were cut to the context length.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    sentence: torch.Tensor
    truncated: list[int]


def encode_expressions(
    encoder: TextEncoder, texts: Sequence[str], truncate: bool = False
) -> ExpressionFeatures:
    """Token features, padding mask and sentence embeddings of ``texts`` (no gradient).

    Args:
        encoder: the model's CLIP.
        texts: N expressions.
        truncate: cut over-long expressions to the context length instead of raising.

    Raises:
        ValueError: an empty (or whitespace-only) expression, naming its index.
        ExpressionTooLongError: an expression over the context length without ``truncate``.
    """
    truncated = []
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"expression {index} is empty ({text!r}); give some words")
        length = encoder.num_tokens(text)
        if length > encoder.context_length:
            if not truncate:
                raise ExpressionTooLongError(
                    f"expression {index} ({text[:60]!r}) has {length} tokens, more than the "
                    f"context length {encoder.context_length} of text encoder '{encoder.name}'; "
                    "shorten it or allow truncation (MODEL.GROUNDER.TRUNCATE_TEXT / --truncate)"
                )
            truncated.append(index)
    ids = encoder.tokenize(list(texts))
    with torch.no_grad():
        tokens, sentence = _run_text_tower(encoder, ids)
    mask = ids != 0  # open_clip pads with 0 after the end token
    return ExpressionFeatures(
        tokens.float(), mask, F.normalize(sentence.float(), dim=-1), truncated
    )


def _run_text_tower(encoder: TextEncoder, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens [N, L, W], pooled and projected [N, D])`` of token ids."""
    tower = encoder.text_tower
    if hasattr(tower, "output_tokens"):  # open_clip TextTransformer (custom-text models)
        previous = tower.output_tokens
        tower.output_tokens = True
        try:
            pooled, tokens = tower(ids)
        finally:
            tower.output_tokens = previous
        return tokens, pooled
    model = encoder.model  # plain CLIP keeps the text transformer at the top level
    x = model.token_embedding(ids) + model.positional_embedding
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask))
    pool_type = getattr(model, "text_pool_type", "argmax")
    pooled = text_global_pool(x, ids, pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    projection = model.text_projection
    if projection is not None:
        pooled = projection(pooled) if isinstance(projection, nn.Linear) else pooled @ projection
    return x, pooled
