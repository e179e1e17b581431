"""MaskQ-Former: learnable queries read a frozen feature map where a mask says, and become the
language model's visual prefix (OSM).

Three kinds of query: *mask queries* cross-attend only to the grid cells the mask touches,
*context queries* to the cells of the mask's box enlarged by ``context_enlarge`` on every side,
and one *mode query* (``any``, or a dataset's vocabulary) that attends like the mask queries and
tells the language model which label space to answer in. Queries also attend to each other. The
outputs are projected into the language model's input embedding space.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MaskQFormer", "MaskedCrossAttention", "context_boxes", "grid_regions"]


def context_boxes(boxes: torch.Tensor, enlarge: float, image_size: tuple[int, int]) -> torch.Tensor:
    """``Tensor[M, 4]`` XYXY boxes grown by ``enlarge`` times their size on every side, clipped
    to the image ``(height, width)``."""
    w = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * enlarge
    h = (boxes[:, 3] - boxes[:, 1]).clamp(min=0) * enlarge
    grown = boxes + torch.stack([-w, -h, w, h], dim=1)
    height, width = image_size
    limits = grown.new_tensor([width, height, width, height])
    return torch.minimum(grown.clamp(min=0), limits)


def grid_regions(
    masks: torch.Tensor, boxes: torch.Tensor, grid: tuple[int, int], image_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid cells each mask touches and the cells each box overlaps.

    Args:
        masks: ``Tensor[M, H, W]`` (bool or probabilities in [0, 1]) at the image's resolution.
        boxes: ``Tensor[M, 4]`` XYXY in the same pixels.
        grid: ``(h, w)`` of the feature map.
        image_size: ``(H, W)`` the feature map covers.

    Returns:
        ``BoolTensor[M, h * w]`` mask cells and ``BoolTensor[M, h * w]`` box cells (the mask's
        cells included).
    """
    gh, gw = grid
    height, width = image_size
    m = len(masks)
    if m:
        coverage = F.adaptive_avg_pool2d(masks[:, None].float(), grid)[:, 0]
        in_mask = (coverage > 0).flatten(1)
    else:
        in_mask = torch.zeros(0, gh * gw, dtype=torch.bool, device=boxes.device)
    ys = torch.arange(gh, device=boxes.device, dtype=torch.float32) * (height / gh)
    xs = torch.arange(gw, device=boxes.device, dtype=torch.float32) * (width / gw)
    x_hit = (xs[None] < boxes[:, 2:3]) & (xs[None] + width / gw > boxes[:, 0:1])  # [M, gw]
    y_hit = (ys[None] < boxes[:, 3:4]) & (ys[None] + height / gh > boxes[:, 1:2])  # [M, gh]
    in_box = (y_hit[:, :, None] & x_hit[:, None, :]).flatten(1)
    return in_mask, in_box | in_mask


class MaskedCrossAttention(nn.Module):
    """Multi-head attention of queries over grid cells, each query restricted to its own cells.

    A query with no allowed cell (an empty mask) gets exact zeros, not NaN.

    Args:
        dim: width of queries and features.
        num_heads: attention heads.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"MaskQ-Former width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, queries: torch.Tensor, features: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        """``queries`` ``Tensor[M, Q, D]``, ``features`` ``Tensor[M, N, D]``, ``allowed``
        ``BoolTensor[M, Q, N]`` -> ``Tensor[M, Q, D]``."""
        m, q, d = queries.shape
        h = self.num_heads
        query = self.q(queries).view(m, q, h, d // h).transpose(1, 2)
        key, value = self.kv(features).view(m, -1, 2, h, d // h).permute(2, 0, 3, 1, 4)
        logits = query @ key.transpose(-1, -2) / math.sqrt(d // h)  # [M, h, Q, N]
        logits = logits.masked_fill(~allowed[:, None], float("-inf"))
        any_allowed = allowed.any(dim=-1)[:, None, :, None]
        weights = torch.where(any_allowed, logits.softmax(dim=-1), torch.zeros_like(logits))
        return self.out((weights @ value).transpose(1, 2).reshape(m, q, d))


class _Layer(nn.Module):
    """Pre-norm self-attention among the queries, masked cross-attention to the grid, MLP."""

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = MaskedCrossAttention(dim, num_heads)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim)
        )

    def forward(
        self, x: torch.Tensor, features: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.self_attn(y, y, y, need_weights=False)[0]
        x = x + self.cross_attn(self.norm2(x), features, allowed)
        return x + self.mlp(self.norm3(x))


class MaskQFormer(nn.Module):
    """Mask, context and mode queries over a frozen feature map -> LM input embeddings.

    Args:
        in_channels: channels of each input feature level, finest first.
        dim: width of the queries.
        out_dim: the language model's input embedding width.
        num_heads: attention heads.
        num_layers: transformer layers.
        num_mask_queries: queries restricted to the mask.
        num_context_queries: queries restricted to the enlarged box.
        modes: mode names, one mode query each (``"any"`` and one per dataset vocabulary).
        context_enlarge: the context box grows by this times the box size on every side.
        dropout: dropout inside the layers.
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        dim: int,
        out_dim: int,
        num_heads: int = 4,
        num_layers: int = 2,
        num_mask_queries: int = 8,
        num_context_queries: int = 4,
        modes: Sequence[str] = ("any",),
        context_enlarge: float = 0.5,
        dropout: float = 0.0,
    ):
        super().__init__()
        if not modes:
            raise ValueError("MaskQ-Former needs at least one mode (MODEL.OSM.MODES)")
        self.modes = list(modes)
        self.num_mask_queries = num_mask_queries
        self.num_context_queries = num_context_queries
        self.context_enlarge = context_enlarge
        self.input_proj = nn.ModuleList(nn.Conv2d(c, dim, kernel_size=1) for c in in_channels)
        self.position = nn.Linear(16, dim)  # Fourier features of the cell centre
        self.feature_norm = nn.LayerNorm(dim)
        self.mask_queries = nn.Parameter(torch.randn(num_mask_queries, dim) * 0.02)
        self.context_queries = nn.Parameter(torch.randn(num_context_queries, dim) * 0.02)
        self.mode_queries = nn.Embedding(len(self.modes), dim)
        nn.init.normal_(self.mode_queries.weight, std=0.02)
        self.layers = nn.ModuleList(_Layer(dim, num_heads, dropout) for _ in range(num_layers))
        self.out_norm = nn.LayerNorm(dim)
        self.out_proj = nn.Linear(dim, out_dim)

    @property
    def num_queries(self) -> int:
        return self.num_mask_queries + self.num_context_queries + 1

    def mode_index(self, mode: str) -> int:
        """The index of mode ``mode``; an unknown one raises naming the known ones."""
        if mode not in self.modes:
            raise ValueError(f"unknown OSM mode {mode!r}; MODEL.OSM.MODES are {self.modes}")
        return self.modes.index(mode)

    def encode_features(self, levels: Sequence[torch.Tensor]) -> torch.Tensor:
        """Project and sum feature levels at the finest grid and add cell positions.

        Args:
            levels: ``Tensor[B, C_l, h_l, w_l]`` per level, finest first (coarser ones are
                upsampled by nearest neighbour, so each cell only reads its own area).

        Returns:
            ``Tensor[B, h, w, D]``.
        """
        if len(levels) != len(self.input_proj):
            raise ValueError(
                f"MaskQ-Former expects {len(self.input_proj)} levels, got {len(levels)}"
            )
        grid = levels[0].shape[-2:]
        x = sum(
            F.interpolate(proj(level), size=grid, mode="nearest")
            for proj, level in zip(self.input_proj, levels)
        )
        x = x.permute(0, 2, 3, 1)
        return self.feature_norm(x) + self.position(_fourier(grid, x.device)).to(x.dtype)

    def forward(
        self,
        grid_features: torch.Tensor,
        masks: torch.Tensor,
        boxes: torch.Tensor,
        image_index: torch.Tensor,
        modes: torch.Tensor,
        image_size: tuple[int, int],
    ) -> torch.Tensor:
        """Visual prefix tokens for each mask.

        Args:
            grid_features: ``Tensor[B, h, w, D]`` from :meth:`encode_features`.
            masks: ``Tensor[M, H, W]`` masks (bool or probabilities) at input resolution.
            boxes: ``Tensor[M, 4]`` XYXY boxes of the masks, input pixels.
            image_index: ``LongTensor[M]`` the image of each mask.
            modes: ``LongTensor[M]`` mode index per mask.
            image_size: ``(H, W)`` of the (padded) input the features cover.

        Returns:
            ``Tensor[M, Q, out_dim]``: mask queries, context queries, mode query.
        """
        b, gh, gw, d = grid_features.shape
        in_mask, in_context = grid_regions(
            masks, context_boxes(boxes, self.context_enlarge, image_size), (gh, gw), image_size
        )
        kinds = [in_mask] * self.num_mask_queries + [in_context] * self.num_context_queries
        allowed = torch.stack([*kinds, in_mask], dim=1)  # [M, Q, h*w]
        m = len(masks)
        x = torch.cat(
            [
                self.mask_queries.expand(m, -1, -1),
                self.context_queries.expand(m, -1, -1),
                self.mode_queries(modes)[:, None],
            ],
            dim=1,
        )
        features = grid_features.flatten(1, 2)[image_index]  # [M, h*w, D]
        for layer in self.layers:
            x = layer(x, features, allowed)
        return self.out_proj(self.out_norm(x))


def _fourier(grid: tuple[int, int], device: torch.device) -> torch.Tensor:
    """``Tensor[h, w, 16]``: sin/cos of the cell centre's (x, y) in [0, 1] at 4 frequencies."""
    gh, gw = int(grid[0]), int(grid[1])
    ys = (torch.arange(gh, device=device, dtype=torch.float32) + 0.5) / gh
    xs = (torch.arange(gw, device=device, dtype=torch.float32) + 0.5) / gw
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    freqs = torch.pi * 2.0 ** torch.arange(4, device=device, dtype=torch.float32)
    angles = torch.stack([xx, yy], dim=-1)[..., None] * freqs  # [h, w, 2, 4]
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)
