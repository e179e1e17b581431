"""Caption grounding (CGG, after OVR-CNN): the nouns of an image's caption should be found among
its regions, and better than among the regions of the batch's other images.

For an image i and a caption j, ``s_kl`` is the cosine of region k of i (its top proposals, in
objectness order) with noun l of j. Attention weights come from ``s / temperature``: a softmax
over regions for each noun, and one over nouns for each region. The pair's score is the mean,
over the caption's nouns, of the region-attended similarity, averaged with the mean, over the
image's regions, of the noun-attended similarity. The loss is the image-caption contrastive
cross-entropy over the batch, both directions, on ``score / contrastive_temperature``.

In distributed training the batch is gathered across ranks *with gradients*: every rank computes
the loss over the whole gathered batch (the same value everywhere); the gather's backward sums
the ranks' gradients, so after DDP's averaging each parameter gets exactly the single-process
gradient of that loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ovvision.config import CfgNode, configurable
from ovvision.modeling.text import NameEmbedder, vocabulary_classes
from ovvision.modeling.text.caption_nouns import CaptionNouns, NounExtractor
from ovvision.structures import ClassList
from ovvision.utils import comm
from ovvision.utils.events import current_event_storage

from .build import AUXILIARY_LOSS_REGISTRY, AuxiliaryLoss, RegionLossInputs

__all__ = [
    "CaptionGroundingLoss",
    "NounEmbeddings",
    "all_gather_with_grad",
    "caption_contrastive_loss",
    "grounding_scores",
]


class _AllGatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and keeps this rank's slice (works on
    gloo, which has no reduce-scatter)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """``Tensor[W, *shape]``: ``tensor`` of every rank (all the same shape), with gradients; in
    a single process ``tensor[None]``."""
    if comm.get_world_size() == 1:
        return tensor[None]
    return _AllGatherWithGrad.apply(tensor)


def grounding_scores(
    regions: torch.Tensor,
    region_mask: torch.Tensor,
    nouns: torch.Tensor,
    noun_mask: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """The image-caption scores of every pair of a batch.

    Args:
        regions: ``Tensor[B, K, D]`` unit region embeddings (padded).
        region_mask: ``BoolTensor[B, K]`` real regions.
        nouns: ``Tensor[B, M, D]`` unit noun embeddings of each image's caption (padded).
        noun_mask: ``BoolTensor[B, M]`` real nouns.
        temperature: attention logits are similarities divided by this.

    Returns:
        ``Tensor[B, B]``: row i image, column j caption. A pair without a region or a noun
        scores 0 (finite, no NaN in the gradient).
    """
    sim = torch.einsum("ikd,jmd->ijkm", regions, nouns)
    rmask = region_mask[:, None, :, None].expand_as(sim)
    nmask = noun_mask[None, :, None, :].expand_as(sim)
    logits = sim / temperature
    # a finite fill keeps empty sets NaN-free; their terms are masked out below
    over_regions = logits.masked_fill(~rmask, -1e4).softmax(dim=2) * rmask
    over_nouns = logits.masked_fill(~nmask, -1e4).softmax(dim=3) * nmask
    per_noun = (over_regions * sim).sum(dim=2)  # [B, B, M]
    per_region = (over_nouns * sim).sum(dim=3)  # [B, B, K]
    nouns_count = noun_mask.sum(dim=1).clamp(min=1)[None, :]
    regions_count = region_mask.sum(dim=1).clamp(min=1)[:, None]
    noun_score = (per_noun * noun_mask[None, :, :]).sum(dim=2) / nouns_count
    region_score = (per_region * region_mask[:, None, :]).sum(dim=2) / regions_count
    return 0.5 * (noun_score + region_score)


def caption_contrastive_loss(
    scores: torch.Tensor, valid: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Symmetric image-caption cross-entropy among the valid pairs (image i with caption i).

    Args:
        scores: ``Tensor[B, B]`` from :func:`grounding_scores`.
        valid: ``BoolTensor[B]`` images with a region and a caption with a noun.
        temperature: logits are scores divided by this.

    Returns:
        A scalar; an exact zero (a sum over no element of ``scores``) without a valid pair.
    """
    index = valid.nonzero().flatten()
    if len(index) == 0:
        return scores[:0, :0].sum()
    logits = scores[index][:, index] / temperature
    target = torch.arange(len(index), device=scores.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


class NounEmbeddings:
    """Text embeddings of caption nouns, with the class embeddings' encoder and templates, kept
    in memory after the first use.

    A vocabulary class is embedded from its name and synonyms (as its class embedding is); another
    noun from its lemma.

    Args:
        name_embedder: the model's text encoder and templates.
        classes: the vocabulary the nouns were matched to.
    """

    def __init__(self, name_embedder: NameEmbedder, classes: ClassList):
        self.name_embedder = name_embedder
        self.classes = classes
        self._cache: dict[int | str, torch.Tensor] = {}

    def _prompts(self, key: int | str) -> list[str]:
        if isinstance(key, int):
            return [self.classes.names[key], *self.classes.synonyms[key]]
        return [key]

    def __call__(self, nouns: CaptionNouns, device: torch.device) -> torch.Tensor:
        """``Tensor[M, D]`` unit embeddings of the caption's nouns (classes, then other nouns);
        ``nouns`` must name at least one."""
        keys: list[int | str] = [*nouns.classes, *nouns.other_nouns]
        missing = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if missing:
            encoder = self.name_embedder.encoder
            # kept here, not in the on-disk cache: it keys files by the whole list of names, so
            # each step's new nouns would write a file of their own
            embedded = encoder.embed_classes(
                [self._prompts(k) for k in missing], self.name_embedder.templates, use_cache=False
            )
            for key, row in zip(missing, embedded.detach().float().cpu()):
                self._cache[key] = row
        return torch.stack([self._cache[k] for k in keys]).to(device)


def _pad(rows: Sequence[torch.Tensor], length: int, like: torch.Tensor) -> torch.Tensor:
    """``Tensor[B, length, D]`` of the rows, zero-padded."""
    out = [F.pad(r, (0, 0, 0, length - len(r))) for r in rows]
    return torch.stack(out) if out else like.new_zeros(0, length, like.shape[-1])


@AUXILIARY_LOSS_REGISTRY.register()
class CaptionGroundingLoss(AuxiliaryLoss):
    """CGG's caption grounding loss (``loss_caption_grounding``), see the module docstring.

    Args:
        nouns: finds the nouns of a caption.
        noun_embeddings: ``(nouns, device) -> Tensor[M, D]`` unit embeddings of a caption's
            nouns (:class:`NounEmbeddings` with the model's text encoder).
        weight: multiplier of the loss.
        regions_per_image: top proposals per image that the nouns are grounded in.
        temperature: region-noun attention logits are cosines divided by this.
        contrastive_temperature: image-caption logits are pair scores divided by this.
    """

    @configurable
    def __init__(
        self,
        *,
        nouns: NounExtractor,
        noun_embeddings: Callable[[CaptionNouns, torch.device], torch.Tensor],
        weight: float = 1.0,
        regions_per_image: int = 32,
        temperature: float = 10.0,
        contrastive_temperature: float = 1.0,
    ):
        super().__init__()
        for key, value in (("TEMPERATURE", temperature), ("REGIONS_PER_IMAGE", regions_per_image),
                           ("CONTRASTIVE_TEMPERATURE", contrastive_temperature)):  # fmt: skip
            if value <= 0:
                raise ValueError(f"MODEL.CAPTION_GROUNDING.{key} must be > 0, got {value}")
        self.nouns = nouns
        self.noun_embeddings = noun_embeddings
        self.weight = weight
        self.regions_per_image = regions_per_image
        self.temperature = temperature
        self.contrastive_temperature = contrastive_temperature

    @classmethod
    def from_config(
        cls, cfg: CfgNode, name_embedder: NameEmbedder | None = None, **_: object
    ) -> dict:
        if name_embedder is None:
            raise ValueError("CaptionGroundingLoss needs the model's text encoder (name_embedder)")
        gcfg, voc = cfg.MODEL.CAPTION_GROUNDING, cfg.VOCABULARY
        classes = vocabulary_classes(
            voc.NAME, custom=voc.CUSTOM, annotation_json=voc.ANNOTATION_JSON
        )
        return {
            "nouns": NounExtractor(classes, other_nouns=gcfg.OTHER_NOUNS),
            "noun_embeddings": NounEmbeddings(name_embedder, classes),
            "weight": gcfg.WEIGHT,
            "regions_per_image": gcfg.REGIONS_PER_IMAGE,
            "temperature": gcfg.TEMPERATURE,
            "contrastive_temperature": gcfg.CONTRASTIVE_TEMPERATURE,
        }

    def extra_boxes(self, proposals: list[torch.Tensor]) -> list[torch.Tensor]:
        return [p[: self.regions_per_image] for p in proposals]

    def forward(self, inputs: RegionLossInputs) -> dict[str, torch.Tensor]:
        embeddings = inputs.extra_embeddings
        device = embeddings.device
        regions = list(embeddings.split([len(b) for b in inputs.extra_boxes]))
        dim = embeddings.shape[1]
        # one caption per image (the mapper samples one per step in training)
        found = [self.nouns(c[0]) if c else None for c in inputs.captions]
        nouns = [
            self.noun_embeddings(f, device).to(embeddings.dtype)
            if f
            else embeddings.new_zeros(0, dim)
            for f in found
        ]
        sizes = torch.tensor([len(regions), max(map(len, regions), default=0),
                              max(map(len, nouns), default=0)])  # fmt: skip
        if comm.get_world_size() > 1:
            sizes = torch.stack([torch.as_tensor(s) for s in comm.all_gather(sizes)])
            sizes = sizes.max(dim=0).values
        batch, k, m = (int(s) for s in sizes)
        local = len(regions)
        region_rows = _pad(regions + [embeddings[:0]] * (batch - local), k, embeddings)
        region_mask = _pad([torch.ones(len(r), 1) for r in regions], k, torch.ones(1, 1))
        noun_rows = _pad(nouns + [embeddings.new_zeros(0, dim)] * (batch - local), m, embeddings)
        noun_mask = _pad([torch.ones(len(n), 1) for n in nouns], m, torch.ones(1, 1))
        counts = torch.tensor([local])
        gathered = [
            all_gather_with_grad(t.to(device))
            for t in (region_rows, F.pad(region_mask[..., 0], (0, 0, 0, batch - local)),
                      noun_rows, F.pad(noun_mask[..., 0], (0, 0, 0, batch - local)),
                      counts)
        ]  # fmt: skip
        keep = torch.cat([torch.arange(int(n)) + r * batch for r, n in enumerate(gathered[4])])
        keep = keep.to(device)
        regions_all, rmask, nouns_all, nmask = (g.flatten(0, 1)[keep] for g in gathered[:4])
        rmask, nmask = rmask.bool(), nmask.bool()
        valid = rmask.any(dim=1) & nmask.any(dim=1)
        storage = current_event_storage()
        if storage is not None:
            storage.put_scalar("caption_grounding/pairs", float(valid.sum()))
        scores = grounding_scores(regions_all, rmask, nouns_all, nmask, self.temperature)
        loss = caption_contrastive_loss(scores, valid, self.contrastive_temperature)
        return {"loss_caption_grounding": self.weight * loss}
