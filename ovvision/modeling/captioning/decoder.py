"""CaptionDecoder: a small transformer decoder that writes a caption from region embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CaptionDecoder"]


class CaptionDecoder(nn.Module):
    """Causal transformer decoder; the memory is the image's region embeddings plus one learned
    slot, so an image without any region still gets a caption. Output logits use the token
    embedding matrix (tied weights).

    Args:
        vocab_size: tokens of the tokenizer.
        memory_dim: dimension D of the region embeddings.
        hidden_dim: decoder width.
        num_layers: decoder layers.
        num_heads: attention heads.
        mlp_ratio: feed-forward width / ``hidden_dim``.
        dropout: dropout inside the layers.
        max_length: longest token sequence (positions learned).
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        memory_dim: int,
        hidden_dim: int = 256,
        num_layers: int = 4,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        max_length: int = 32,
    ):
        super().__init__()
        self.max_length = max_length
        self.memory_proj = nn.Linear(memory_dim, hidden_dim)
        self.memory_slot = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        self.token_embed = nn.Embedding(vocab_size, hidden_dim)
        self.pos_embed = nn.Parameter(torch.zeros(max_length, hidden_dim))
        layer = nn.TransformerDecoderLayer(
            hidden_dim, num_heads, int(hidden_dim * mlp_ratio), dropout,
            batch_first=True, norm_first=True,
        )  # fmt: skip
        self.decoder = nn.TransformerDecoder(layer, num_layers)
        self.norm = nn.LayerNorm(hidden_dim)
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.01)
        nn.init.normal_(self.memory_slot, std=0.02)

    def encode_memory(
        self, regions: torch.Tensor, region_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected memory with the learned slot first.

        Args:
            regions: ``Tensor[B, K, D]`` region embeddings (padded).
            region_mask: ``BoolTensor[B, K]`` real regions.

        Returns:
            ``Tensor[B, K + 1, H]`` and the key padding mask ``BoolTensor[B, K + 1]`` (True = pad).
        """
        slot = self.memory_slot.expand(len(regions), -1, -1)
        memory = torch.cat([slot, self.memory_proj(regions)], dim=1)
        pad = torch.cat([region_mask.new_zeros(len(regions), 1), ~region_mask], dim=1)
        return memory, pad

    def forward(
        self, memory: torch.Tensor, memory_pad: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """Next-token logits.

        Args:
            memory, memory_pad: from :meth:`encode_memory`.
            tokens: ``LongTensor[B, L]`` (L <= max_length), starting with the start token.

        Returns:
            ``Tensor[B, L, V]``: at position t, the logits of token t + 1.
        """
        return self.hidden(memory, memory_pad, tokens) @ self.token_embed.weight.t()

    def next_token_logits(
        self, memory: torch.Tensor, memory_pad: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """``Tensor[B, V]``: the logits of the token after ``tokens`` (decoding)."""
        return self.hidden(memory, memory_pad, tokens)[:, -1] @ self.token_embed.weight.t()

    def hidden(
        self, memory: torch.Tensor, memory_pad: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """``Tensor[B, L, H]`` normalised decoder states (:meth:`forward` before the output
        projection)."""
        length = tokens.shape[1]
        if length > self.max_length:
            raise ValueError(f"{length} tokens exceed the decoder's max_length {self.max_length}")
        x = self.token_embed(tokens) + self.pos_embed[:length]
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        # an empty batch (no caption in this step) cannot carry a padding mask through attention
        pad = memory_pad if len(memory_pad) else None
        x = self.decoder(
            x, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=pad
        )
        return self.norm(x)

    def teacher_forced_loss(
        self, regions: torch.Tensor, region_mask: torch.Tensor, tokens: torch.Tensor, end: int
    ) -> torch.Tensor:
        """Mean cross-entropy of each next token up to and including the end token.

        Only positions with a target are projected onto the vocabulary, and the batch is cut
        after its longest caption: the output projection is most of the cost.

        Args:
            regions, region_mask: see :meth:`encode_memory`.
            tokens: ``LongTensor[B, L]`` start, text, end, padding.
            end: the end token id (positions after it are padding, not targets).

        Returns:
            A scalar; with B = 0 an exact zero that still reaches every parameter.
        """
        before_end = (tokens == end).cumsum(dim=1) == 0  # start and text tokens
        length = int(before_end.sum(dim=1).max()) + 1 if len(tokens) else 2
        tokens = tokens[:, : max(length, 2)]
        memory, pad = self.encode_memory(regions, region_mask)
        states = self.hidden(memory, pad, tokens[:, :-1])
        targets = before_end[:, : tokens.shape[1] - 1]  # the input is no end: its next is a target
        logits = states[targets] @ self.token_embed.weight.t()
        if len(logits) == 0:
            return logits.sum()
        return F.cross_entropy(logits, tokens[:, 1:][targets])
