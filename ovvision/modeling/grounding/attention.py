"""Language-guided feature attention (OV-VG): region queries attend to the expression's tokens."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LanguageGuidedAttention"]


class LanguageGuidedAttention(nn.Module):
    """Layers of query self-attention, cross-attention to token features and an MLP.

    Self-attention lets a query compare itself with the other candidates (what "the small one"
    or "on the left" needs); cross-attention reads the expression. Padding tokens are masked
    out of the cross-attention, so padding an expression changes nothing.

    Args:
        dim: width of queries and attention.
        token_dim: width of the token features (projected to ``dim``).
        num_heads: attention heads.
        num_layers: layers.
        dropout: dropout inside the layers.
    """

    def __init__(
        self, *, dim: int, token_dim: int, num_heads: int, num_layers: int, dropout: float = 0.0
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MODEL.GROUNDER.NUM_LAYERS must be at least 1, got {num_layers}")
        self.token_proj = nn.Linear(token_dim, dim)
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(
                dim, num_heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True
            )
            for _ in range(num_layers)
        )

    def forward(
        self,
        queries: torch.Tensor,
        tokens: torch.Tensor,
        token_mask: torch.Tensor,
        query_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend.

        Args:
            queries: ``Tensor[B, Q, dim]`` region queries (B expressions).
            tokens: ``Tensor[B, L, token_dim]`` token features.
            token_mask: ``BoolTensor[B, L]``, True for real tokens.
            query_mask: ``BoolTensor[B, Q]``, True for real queries (None: all); each row needs
                at least one.

        Returns:
            ``Tensor[B, Q, dim]``.
        """
        memory = self.token_proj(tokens)
        padding = ~token_mask
        query_padding = None if query_mask is None else ~query_mask
        for layer in self.layers:
            queries = layer(
                queries, memory, tgt_key_padding_mask=query_padding, memory_key_padding_mask=padding
            )
        return queries
