"""Region queries in, and out: a matching score per query and a refinement of its box."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GroundingHead", "QueryEncoder", "box_geometry"]


def box_geometry(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Position and size of boxes relative to the image.

    Args:
        boxes: ``Tensor[K, 4]`` (x1, y1, x2, y2) in pixels.
        image_size: ``(height, width)``.

    Returns:
        ``Tensor[K, 7]``: x1, y1, x2, y2, width, height (fractions of the image) and the log of
        the area fraction.
    """
    height, width = image_size
    scale = boxes.new_tensor([width, height, width, height])
    rel = boxes / scale
    wh = (rel[:, 2:] - rel[:, :2]).clamp(min=1e-4)
    return torch.cat([rel, wh, (wh[:, 0] * wh[:, 1]).log().unsqueeze(1)], dim=1)


class QueryEncoder(nn.Module):
    """Turns a selected region into a query vector.

    Its input: the CLIP crop embedding and its elementwise product with the sentence embedding
    (which attributes match), the box geometry and the cosine with the sentence; with
    ``use_detector_embeddings`` the same for the detector's region embedding (trained on base
    classes only, so it can pull the head towards base-looking regions).

    Args:
        embed_dim: D of the region and sentence embeddings.
        dim: width of the queries.
        use_detector_embeddings: also read the detector's region embeddings.
    """

    GEOMETRY = 7

    def __init__(self, *, embed_dim: int, dim: int, use_detector_embeddings: bool = True):
        super().__init__()
        self.use_detector_embeddings = use_detector_embeddings
        sources = 2 if use_detector_embeddings else 1
        in_dim = sources * (2 * embed_dim + 1) + self.GEOMETRY
        self.mlp = nn.Sequential(nn.Linear(in_dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        detector_embeddings: torch.Tensor,
        clip_embeddings: torch.Tensor,
        sentence: torch.Tensor,
        geometry: torch.Tensor,
    ) -> torch.Tensor:
        """Queries of B expressions with Q regions each.

        Args:
            detector_embeddings, clip_embeddings: ``Tensor[B, Q, D]`` unit-norm.
            sentence: ``Tensor[B, D]`` unit-norm.
            geometry: ``Tensor[B, Q, 7]`` from :func:`box_geometry`.

        Returns:
            ``Tensor[B, Q, dim]``.
        """
        s = sentence.unsqueeze(1)
        sources = [detector_embeddings] if self.use_detector_embeddings else []
        sources.append(clip_embeddings)
        matches = [embeddings * s for embeddings in sources]
        cosines = [match.sum(-1, keepdim=True) for match in matches]
        parts = [*sources, *matches, geometry, *cosines]
        return self.norm(self.mlp(torch.cat(parts, dim=-1)))


class GroundingHead(nn.Module):
    """Scores each attended query against the expression and predicts its box deltas.

    The score adds a learned multiple of the selection similarity to the head's output, so the
    untrained CLIP prior (what carries unseen categories) stays in the score.

    Args:
        dim: width of the queries.
        prior_scale: initial (learned) weight of the selection similarity in the score.
    """

    def __init__(self, *, dim: int, prior_scale: float = 10.0):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))
        self.prior_scale = nn.Parameter(torch.tensor(float(prior_scale)))
        self.deltas = nn.Linear(dim, 4)
        nn.init.zeros_(self.deltas.weight)
        nn.init.zeros_(self.deltas.bias)

    def forward(
        self, queries: torch.Tensor, similarity: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and deltas.

        Args:
            queries: ``Tensor[B, Q, dim]``.
            similarity: ``Tensor[B, Q]`` selection similarities.

        Returns:
            ``(logits Tensor[B, Q], deltas Tensor[B, Q, 4])``, deltas in the detector's box
            coding.
        """
        logits = self.score(queries).squeeze(-1) + self.prior_scale * similarity
        return logits, self.deltas(queries)
