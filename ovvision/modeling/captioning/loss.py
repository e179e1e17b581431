"""CaptionGenerationLoss (CGG): write the image's caption from its region embeddings.

The memory of the :class:`CaptionDecoder` is the classifier embeddings of the image's top
proposals (objectness order), so the teacher-forced cross-entropy also trains the region
embeddings to carry what the caption says, novel objects included. At test time
:meth:`CaptionGenerationLoss.generate` writes captions (greedy or beam search).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ovvision.config import CfgNode, configurable
from ovvision.modeling.losses.build import (
    AUXILIARY_LOSS_REGISTRY,
    AuxiliaryLoss,
    RegionLossInputs,
)
from ovvision.utils.events import current_event_storage

from .decoder import CaptionDecoder
from .decoding import beam_search, greedy_decode
from .tokens import CaptionTokenizer

__all__ = ["CaptionGenerationLoss", "pad_regions"]


def pad_regions(regions: list[torch.Tensor], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``Tensor[B, K, D]`` zero-padded rows and ``BoolTensor[B, K]`` real ones.

    Args:
        regions: per image ``Tensor[K_i, D]``.
        dim: D (used when there is no image).
    """
    k = max((len(r) for r in regions), default=0)
    if not regions:
        return torch.zeros(0, k, dim), torch.zeros(0, k, dtype=torch.bool)
    rows = torch.stack([F.pad(r, (0, 0, 0, k - len(r))) for r in regions])
    mask = torch.zeros(len(regions), k, dtype=torch.bool, device=rows.device)
    for i, r in enumerate(regions):
        mask[i, : len(r)] = True
    return rows, mask


@AUXILIARY_LOSS_REGISTRY.register()
class CaptionGenerationLoss(AuxiliaryLoss):
    """CGG's caption generation loss (``loss_caption_generation``) and caption writer.

    Args:
        decoder: the caption decoder.
        tokenizer: caption tokens.
        weight: multiplier of the loss.
        regions_per_image: top proposals whose embeddings are the decoder's memory.
        beam_size: default decoding of :meth:`generate` (1 = greedy).
    """

    @configurable
    def __init__(
        self,
        *,
        decoder: CaptionDecoder,
        tokenizer: CaptionTokenizer,
        weight: float = 1.0,
        regions_per_image: int = 32,
        beam_size: int = 1,
    ):
        super().__init__()
        if regions_per_image <= 0 or beam_size <= 0:
            raise ValueError(
                "MODEL.CAPTION_GENERATION.REGIONS_PER_IMAGE and BEAM_SIZE must be > 0, got "
                f"{regions_per_image} and {beam_size}"
            )
        if decoder.max_length < tokenizer.max_length:
            raise ValueError("the decoder's max_length is shorter than the tokenizer's")
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.weight = weight
        self.regions_per_image = regions_per_image
        self.beam_size = beam_size

    @classmethod
    def from_config(cls, cfg: CfgNode, classifier: nn.Module | None = None, **_: object) -> dict:
        if classifier is None:
            raise ValueError("CaptionGenerationLoss needs the region classifier (its embed_dim)")
        gcfg = cfg.MODEL.CAPTION_GENERATION
        tokenizer = CaptionTokenizer.from_name(cfg.MODEL.TEXT_ENCODER.NAME, gcfg.MAX_LENGTH)
        decoder = CaptionDecoder(
            vocab_size=tokenizer.vocab_size,
            memory_dim=classifier.embed_dim,
            hidden_dim=gcfg.HIDDEN_DIM,
            num_layers=gcfg.NUM_LAYERS,
            num_heads=gcfg.NUM_HEADS,
            mlp_ratio=gcfg.MLP_RATIO,
            dropout=gcfg.DROPOUT,
            max_length=gcfg.MAX_LENGTH,
        )
        return {
            "decoder": decoder,
            "tokenizer": tokenizer,
            "weight": gcfg.WEIGHT,
            "regions_per_image": gcfg.REGIONS_PER_IMAGE,
            "beam_size": gcfg.BEAM_SIZE,
        }

    def extra_boxes(self, proposals: list[torch.Tensor]) -> list[torch.Tensor]:
        return [p[: self.regions_per_image] for p in proposals]

    def forward(self, inputs: RegionLossInputs) -> dict[str, torch.Tensor]:
        embeddings = inputs.extra_embeddings
        regions = embeddings.split([len(b) for b in inputs.extra_boxes])
        # one caption per image (the mapper samples one per step); images without none
        with_caption = [i for i, c in enumerate(inputs.captions) if c]
        storage = current_event_storage()
        if storage is not None:
            storage.put_scalar("caption_generation/captions", float(len(with_caption)))
        memory, mask = pad_regions([regions[i] for i in with_caption], embeddings.shape[1])
        if not with_caption:  # an empty batch that keeps the graph to the region embeddings
            memory, mask = embeddings[:0, None], mask.new_zeros(0, 1)
        tokens = self.tokenizer.encode([inputs.captions[i][0] for i in with_caption])
        loss = self.decoder.teacher_forced_loss(
            memory, mask.to(embeddings.device), tokens.to(embeddings.device), self.tokenizer.end
        )
        return {"loss_caption_generation": self.weight * loss}

    @torch.no_grad()
    def generate(self, regions: list[torch.Tensor], beam_size: int | None = None) -> list[str]:
        """A caption per image.

        Args:
            regions: per image ``Tensor[K_i, D]`` region embeddings (top proposals in objectness
                order; K_i may be 0).
            beam_size: 1 = greedy; None = the configured one.

        Returns:
            One caption per image.
        """
        beam_size = self.beam_size if beam_size is None else beam_size
        device = self.decoder.pos_embed.device
        memory, mask = pad_regions(
            [r.to(device) for r in regions], self.decoder.memory_proj.in_features
        )
        args = (memory.to(device), mask.to(device), self.tokenizer.start, self.tokenizer.end,
                self.tokenizer.max_length)  # fmt: skip
        if beam_size == 1:
            tokens = greedy_decode(self.decoder, *args)
        else:
            tokens = beam_search(self.decoder, *args, beam_size)
        return [self.tokenizer.decode(t) for t in tokens]
