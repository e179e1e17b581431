"""OSMClassifier: a language model names each mask (OSM, "Towards Open-Ended Visual Recognition
with Large Language Model").

Masks come from a frozen OV-RCNN's class-agnostic mask head (``PROPOSALS: "detector"``) or from
the ground truth (``"ground_truth"``, for naming evaluation). The frozen CLIP image tower's dense
maps are computed once per image; a :class:`MaskQFormer` turns each mask into visual tokens
(plus, optionally, the CLIP embedding of its box crop); a causal LM loaded by path reads the
naming prompt, then the visual tokens, and answers (the last visual token's output predicts the
name's first token: a short path that a small LM learns to use quickly). Inference returns
ordinary detections -- the vocabulary ranked by the probability of each class's name -- plus the
generated free-text name of every instance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ovvision.config import CfgNode, configurable
from ovvision.modeling.backbone import ClipTower, wrap_clip_tower
from ovvision.modeling.backbone.clip_backbone import check_pixel_normalisation
from ovvision.modeling.clip_regions import ClipBoxEmbedder
from ovvision.modeling.osm import (
    NAMING_PROMPTS,
    LanguageModel,
    MaskProposals,
    MaskQFormer,
    VocabularyScorer,
    beam_search,
    greedy_decode,
    inference_prompt,
    load_causal_lm,
)
from ovvision.modeling.osm.regions import (
    detector_mask_proposals,
    ground_truth_proposals,
    pad_masks,
    region_mask,
    resize_masks,
)
from ovvision.modeling.postprocessing import detector_postprocess
from ovvision.modeling.text import (
    VocabularyLike,
    build_vocabulary_from_cfg,
    text_encoder_from_cfg,
)
from ovvision.structures import Boxes, ClassList, ImageList, Instances, Vocabulary, as_class_list

from .build import META_ARCH_REGISTRY
from .input_checks import check_image
from .ovrcnn import OVRCNN, load_detector_weights

__all__ = ["OSMClassifier"]

logger = logging.getLogger(__name__)

PROPOSAL_SOURCES = ("detector", "ground_truth")


@META_ARCH_REGISTRY.register()
class OSMClassifier(nn.Module):
    """Generative mask classification (``META_ARCHITECTURE: "OSMClassifier"``).

    Training input (``tools/train_osm.py`` builds it): per image ``{"image", "regions"}``, each
    region a dict with ``"box"`` (XYXY input pixels), ``"mask"`` (``BoolTensor[H, W]`` or None
    for the box itself), ``"prompt"``, ``"answer"`` and ``"mode"``; the loss is the answer's
    token cross-entropy. Inference input: mapper dicts (with ``"instances"`` holding
    ``gt_boxes``/``gt_masks`` for ground-truth proposals).

    Args:
        tower: the frozen CLIP image tower (dense maps, and crops for the crop token).
        feature_levels: tower maps the MaskQ-Former reads, finest first.
        qformer: the MaskQ-Former.
        lm: the causal language model.
        crop_embedder: CLIP embeddings of box crops (None: no crop token).
        crop_proj: projection of a crop embedding to the LM's width (with ``crop_embedder``).
        vocabulary: the classes ranked at inference.
        pixel_mean, pixel_std: input normalisation (CLIP's), 0-255 units.
        detector: the frozen OV-RCNN proposing masks (None: ground-truth masks).
        train_lm_layers: last LM blocks trained (0: LM frozen).
        mode: the mode query used at inference.
        max_proposals, proposal_nms: detector proposals kept per image, and their NMS IoU.
        max_name_tokens, beam_size: decoding length limit, and 1 = greedy.
        generate_names: write free-text names at inference.
        score_end_token: a name's probability includes the end token.
        classes_per_mask: detections per proposal (its best classes).
        objectness_weight: exponent of the proposal's objectness in the score.
        score_thresh: detections under this score are dropped.
        mask_threshold: mask probability threshold when pasting detector masks.
    """

    @configurable
    def __init__(
        self,
        *,
        tower: ClipTower,
        feature_levels: Sequence[str],
        qformer: MaskQFormer,
        lm: LanguageModel,
        crop_embedder: ClipBoxEmbedder | None,
        crop_proj: nn.Module | None,
        vocabulary: Vocabulary,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        detector: OVRCNN | None = None,
        train_lm_layers: int = 0,
        mode: str = "any",
        max_proposals: int = 50,
        proposal_nms: float = 0.7,
        max_name_tokens: int = 6,
        beam_size: int = 1,
        generate_names: bool = True,
        score_end_token: bool = True,
        classes_per_mask: int = 1,
        objectness_weight: float = 1.0,
        score_thresh: float = 0.0,
        mask_threshold: float = 0.5,
    ):
        super().__init__()
        self.tower = tower
        self.feature_levels = list(feature_levels)
        self.qformer = qformer
        self.lm = lm
        self.lm.freeze(train_lm_layers)
        self.crop_embedder = crop_embedder
        self.crop_proj = crop_proj
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        # Not a submodule: its weights stay in its own checkpoint, not in OSM's.
        self._detector = [detector] if detector is not None else []
        if detector is not None:
            detector.requires_grad_(False)
            detector.eval()
        self.mode = mode
        self.mode_index = qformer.mode_index(mode)
        self.max_proposals = max_proposals
        self.proposal_nms = proposal_nms
        self.max_name_tokens = max_name_tokens
        self.beam_size = beam_size
        self.generate_names = generate_names
        self.score_end_token = score_end_token
        self.classes_per_mask = classes_per_mask
        self.objectness_weight = objectness_weight
        self.score_thresh = score_thresh
        self.mask_threshold = mask_threshold
        self._vocabulary: Vocabulary | ClassList | None = None
        self._scorer: VocabularyScorer | None = None
        self.set_vocabulary(vocabulary)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict[str, Any]:
        o = cfg.MODEL.OSM
        if o.PROPOSALS not in PROPOSAL_SOURCES:
            raise ValueError(
                f"MODEL.OSM.PROPOSALS must be one of {PROPOSAL_SOURCES}, got {o.PROPOSALS!r}"
            )
        if not o.LANGUAGE_MODEL:
            raise ValueError("MODEL.OSM.LANGUAGE_MODEL is empty: set the folder of a causal LM")
        detector = None
        if o.PROPOSALS == "detector":
            detector = OVRCNN(cfg)
            load_detector_weights(detector, o.DETECTOR_WEIGHTS, "MODEL.OSM.DETECTOR_WEIGHTS")
            clip = detector.name_embedder.encoder if detector.name_embedder else None
            tower = detector.backbone.tower
        else:
            clip = text_encoder_from_cfg(cfg)
            tower = wrap_clip_tower(clip)
        if clip is None:
            clip = text_encoder_from_cfg(cfg)
        check_pixel_normalisation(cfg, tower)
        lm = load_causal_lm(o.LANGUAGE_MODEL, trust_remote_code=o.TRUST_REMOTE_CODE)
        missing = [lv for lv in o.FEATURE_LEVELS if lv not in tower.feature_channels]
        if missing or not o.FEATURE_LEVELS:
            raise ValueError(
                f"MODEL.OSM.FEATURE_LEVELS {list(o.FEATURE_LEVELS)}: the CLIP tower has maps "
                f"{list(tower.feature_channels)}"
            )
        levels = sorted(o.FEATURE_LEVELS, key=lambda lv: tower.feature_strides[lv])
        qformer = MaskQFormer(
            in_channels=[tower.feature_channels[lv] for lv in levels],
            dim=o.HIDDEN_DIM,
            out_dim=lm.embed_dim,
            num_heads=o.NUM_HEADS,
            num_layers=o.NUM_LAYERS,
            num_mask_queries=o.NUM_MASK_QUERIES,
            num_context_queries=o.NUM_CONTEXT_QUERIES,
            modes=list(o.MODES),
            context_enlarge=o.CONTEXT_ENLARGE,
            dropout=o.DROPOUT,
        )
        crop_embedder = crop_proj = None
        if o.CROP_TOKEN:
            crop_embedder = ClipBoxEmbedder(
                tower=tower,
                source="crops",
                pixel_mean=list(cfg.MODEL.PIXEL_MEAN),
                pixel_std=list(cfg.MODEL.PIXEL_STD),
                crop_scale=cfg.MODEL.CLIP_BOX_EMBEDDER.CROP_SCALE,
            )
            crop_proj = nn.Sequential(
                nn.Linear(tower.embed_dim, lm.embed_dim), nn.LayerNorm(lm.embed_dim)
            )
        return {
            "tower": tower,
            "feature_levels": levels,
            "qformer": qformer,
            "lm": lm,
            "crop_embedder": crop_embedder,
            "crop_proj": crop_proj,
            "vocabulary": build_vocabulary_from_cfg(cfg, clip),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "detector": detector,
            "train_lm_layers": o.TRAIN_LM_LAYERS,
            "mode": o.MODE,
            "max_proposals": o.MAX_PROPOSALS,
            "proposal_nms": o.PROPOSAL_NMS,
            "max_name_tokens": o.MAX_NAME_TOKENS,
            "beam_size": o.BEAM_SIZE,
            "generate_names": o.GENERATE_NAMES,
            "score_end_token": o.SCORE_END_TOKEN,
            "classes_per_mask": o.CLASSES_PER_MASK,
            "objectness_weight": o.OBJECTNESS_WEIGHT,
            "score_thresh": o.SCORE_THRESH_TEST,
            "mask_threshold": cfg.MODEL.ROI_MASK_HEAD.MASK_THRESHOLD,
        }

    # -- vocabulary and mode -------------------------------------------------------------------
    @property
    def detector(self) -> OVRCNN | None:
        return self._detector[0] if self._detector else None

    @property
    def vocabulary(self) -> Vocabulary | ClassList:
        assert self._vocabulary is not None  # set in __init__
        return self._vocabulary

    @property
    def class_names(self) -> list[str]:
        return list(self.vocabulary.names)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def set_vocabulary(self, vocabulary: VocabularyLike) -> None:
        """Rank the classes of ``vocabulary`` from now on: a Vocabulary, a ClassList, or class
        names with optional ``|``-separated synonyms. Only names are read (no embedding)."""
        if isinstance(vocabulary, Vocabulary):
            classes = ClassList(
                list(vocabulary.names),
                [list(s) for s in vocabulary.synonyms],
                vocabulary.is_novel.tolist(),
            )
        else:
            classes = as_class_list(vocabulary)
            vocabulary = classes
        self._scorer = VocabularyScorer(self.lm, classes, end_token=self.score_end_token)
        self._vocabulary = vocabulary

    def set_training_vocabulary(self, vocabulary: VocabularyLike) -> None:
        """Naming is trained on text, not on a class list: this only sets the vocabulary."""
        self.set_vocabulary(vocabulary)

    def set_mode(self, mode: str) -> None:
        """Answer in mode ``mode`` (``"any"`` or a dataset's) from now on."""
        self.mode_index = self.qformer.mode_index(mode)
        self.mode = mode

    def _apply(self, fn: Any, recurse: bool = True) -> OSMClassifier:
        super()._apply(fn, recurse)
        if self._detector:
            self._detector[0]._apply(fn, recurse)
        return self

    def train(self, mode: bool = True) -> OSMClassifier:
        """The frozen parts (CLIP, detector, a wholly frozen LM) stay in eval mode."""
        super().train(mode)
        self.tower.eval()
        if not any(p.requires_grad for p in self.lm.parameters()):
            self.lm.eval()  # no dropout in a frozen LM
        if self._detector:
            self._detector[0].eval()
        return self

    # -- shared steps --------------------------------------------------------------------------
    def preprocess_image(self, batched_inputs: list[dict[str, Any]]) -> ImageList:
        """Normalise and pad the images of a batch (to the tower's coarsest stride)."""
        if not batched_inputs:
            raise ValueError("the batch is empty")
        images = [
            (check_image(x, i).to(self.device, torch.float32) - self.pixel_mean) / self.pixel_std
            for i, x in enumerate(batched_inputs)
        ]
        return ImageList.from_tensors(images, max(self.tower.feature_strides.values()))

    def visual_tokens(
        self,
        images: ImageList,
        maps: dict[str, torch.Tensor],
        masks: torch.Tensor,
        boxes: torch.Tensor,
        image_index: torch.Tensor,
        modes: torch.Tensor,
    ) -> torch.Tensor:
        """``Tensor[M, Q (+1 crop token), E]``: the LM prefix of each mask.

        Args:
            images: the normalised batch.
            maps: the tower's maps of the batch (computed once per image).
            masks: ``Tensor[M, H, W]`` at the padded input size; boxes ``Tensor[M, 4]`` XYXY.
            image_index, modes: ``LongTensor[M]``.
        """
        grid = self.qformer.encode_features([maps[lv].float() for lv in self.feature_levels])
        size = tuple(images.tensor.shape[-2:])
        tokens = self.qformer(grid, masks, boxes, image_index, modes, size)
        if self.crop_embedder is None:
            return tokens
        per_image = [boxes[image_index == i] for i in range(len(images))]
        crops = self.crop_embedder(images, maps, per_image)
        order = torch.cat([torch.where(image_index == i)[0] for i in range(len(images))])
        crop_tokens = torch.empty_like(crops)
        crop_tokens[order] = crops
        return torch.cat([tokens, self.crop_proj(crop_tokens)[:, None]], dim=1)

    def _prompt_ids(self, prompt: str) -> list[int]:
        return [self.lm.bos_id, *self.lm.encode(prompt)]

    # -- training ------------------------------------------------------------------------------
    def forward(self, batched_inputs: list[dict[str, Any]]) -> dict[str, torch.Tensor] | list[dict]:
        """Training: ``{"loss_osm_lm"}``. Inference: see :meth:`inference`."""
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        with torch.no_grad():
            maps = self.tower(images.tensor)
        size = tuple(images.tensor.shape[-2:])
        masks, boxes, owners, modes, prompts, answers = [], [], [], [], [], []
        for i, item in enumerate(batched_inputs):
            for r in item.get("regions", []):
                box = torch.as_tensor(r["box"], dtype=torch.float32, device=self.device)
                masks.append(region_mask(r.get("mask"), box, size, self.device))
                boxes.append(box)
                owners.append(i)
                modes.append(self.qformer.mode_index(r.get("mode", "any")))
                prompts.append(self._prompt_ids(r["prompt"]))
                answers.append([*self.lm.encode(r["answer"]), self.lm.eos_id])
        if not masks:  # an exact zero reaching every trained parameter
            zero = sum(p.reshape(-1)[:0].sum() for p in self.parameters() if p.requires_grad)
            return {"loss_osm_lm": zero}
        tokens = self.visual_tokens(
            images,
            maps,
            torch.stack(masks),
            torch.stack(boxes),
            torch.tensor(owners, device=self.device),
            torch.tensor(modes, device=self.device),
        )
        return {"loss_osm_lm": self._answer_loss(tokens, prompts, answers)}

    def _answer_loss(
        self, visual: torch.Tensor, prompts: list[list[int]], answers: list[list[int]]
    ) -> torch.Tensor:
        """Mean cross-entropy of the answers' tokens (end token included) after each region's
        prompt and visual tokens; sequences are right-padded (causal attention ignores it)."""
        q = visual.shape[1]
        rows, targets = [], []
        for j, (p, a) in enumerate(zip(prompts, answers)):
            text = self.lm.embed(torch.tensor(p + a[:-1], device=self.device)).to(visual.dtype)
            rows.append(torch.cat([text[: len(p)], visual[j], text[len(p) :]]))
            target = torch.full((len(rows[-1]),), -100, dtype=torch.int64, device=self.device)
            start = len(p) + q - 1  # the last visual token's output predicts the first answer token
            target[start:] = torch.tensor(a, device=self.device)
            targets.append(target)
        embeds = nn.utils.rnn.pad_sequence(rows, batch_first=True)
        target = nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=-100)
        logits = self.lm.logits(embeds)
        return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=-100)

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def inference(self, batched_inputs: list[dict[str, Any]]) -> list[dict[str, Instances]]:
        """Rank the vocabulary for every proposed mask and name it.

        Returns:
            Per image ``{"instances": Instances}`` in the original image's pixels with
            ``pred_boxes``, ``scores``, ``pred_classes`` (indices into :attr:`class_names`),
            ``pred_masks``, ``pred_names`` (the free-text name of its mask; ``""`` when names
            are off) and ``proposal_index`` (which proposal of the image it came from).
        """
        images, proposals, prefix = self._prefixes(batched_inputs)
        assert self._scorer is not None
        class_logp = self._scorer(self.lm, prefix)
        names = self.decode_names(prefix) if self.generate_names else [""] * len(prefix)
        return self._detections(batched_inputs, images, proposals, class_logp, names)

    @torch.no_grad()
    def name_masks(self, batched_inputs: list[dict[str, Any]]) -> list[dict[str, Instances]]:
        """Open-ended mode: a free-text name for every proposed mask, no vocabulary.

        Returns:
            Per image ``{"instances": Instances}`` in the original image's pixels, one per
            proposal: ``pred_boxes``, ``pred_masks``, ``scores`` (the proposal's objectness, 1
            for ground-truth masks), ``pred_names``, ``proposal_index`` and ``pred_classes``
            (all 0: there is no vocabulary).
        """
        images, proposals, prefix = self._prefixes(batched_inputs)
        names = self.decode_names(prefix)
        ones = prefix.new_zeros(len(prefix), 1)  # one "class" of probability 1 per mask
        return self._detections(batched_inputs, images, proposals, ones, names, top_k=1)

    def _prefixes(
        self, batched_inputs: list[dict[str, Any]]
    ) -> tuple[ImageList, list[MaskProposals], torch.Tensor]:
        """The batch, its proposals and their LM prefixes ``Tensor[M, P, E]`` (the inference
        prompt, then the visual tokens: the last one's output predicts the name's first token);
        the CLIP maps are computed once per image."""
        images = self.preprocess_image(batched_inputs)
        if self.detector is not None:
            maps = self.detector.backbone(images.tensor)
            proposals = detector_mask_proposals(
                self.detector, images, maps, self.max_proposals, self.proposal_nms,
                self.mask_threshold,
            )  # fmt: skip
        else:
            maps = self.tower(images.tensor)
            proposals = [
                ground_truth_proposals(x, s, i, self.device)
                for i, (x, s) in enumerate(zip(batched_inputs, images.image_sizes))
            ]
        padded = tuple(images.tensor.shape[-2:])
        masks = torch.cat([pad_masks(p.masks, padded) for p in proposals])
        boxes = torch.cat([p.boxes for p in proposals])
        owners = torch.cat(
            [torch.full((len(p.boxes),), i, device=self.device) for i, p in enumerate(proposals)]
        ).long()
        prompt = torch.tensor(
            self._prompt_ids(inference_prompt(NAMING_PROMPTS)), device=self.device
        )
        prompt = self.lm.embed(prompt)
        if not len(boxes):
            return images, proposals, prompt.new_zeros(0, 1, prompt.shape[-1])
        modes = torch.full_like(owners, self.mode_index)
        visual = self.visual_tokens(images, maps, masks, boxes, owners, modes)
        prompt = prompt.to(visual.dtype).expand(len(visual), -1, -1)
        return images, proposals, torch.cat([prompt, visual], dim=1)

    def decode_names(self, prefix: torch.Tensor) -> list[str]:
        """Free-text names for ``prefix`` ``Tensor[M, P, E]`` (greedy or beam search)."""
        if self.beam_size > 1:
            ids = beam_search(self.lm, prefix, self.max_name_tokens, self.beam_size)
        else:
            ids = greedy_decode(self.lm, prefix, self.max_name_tokens)
        return [self.lm.decode(t) for t in ids]

    def _detections(
        self,
        batched_inputs: list[dict[str, Any]],
        images: ImageList,
        proposals: list[MaskProposals],
        class_logp: torch.Tensor,
        names: list[str],
        top_k: int | None = None,
    ) -> list[dict[str, Instances]]:
        """Per proposal its ``top_k`` (default ``classes_per_mask``) best classes, scored
        ``p(class) * objectness ** objectness_weight`` (``p`` normalised over the vocabulary)."""
        probs = class_logp.softmax(dim=1)
        outputs, start = [], 0
        k = max(1, min(top_k or self.classes_per_mask, probs.shape[1]))
        for item, p, size in zip(batched_inputs, proposals, images.image_sizes):
            n = len(p.boxes)
            prob = probs[start : start + n]
            top, classes = prob.topk(k, dim=1)
            scores = top * p.objectness[:, None] ** self.objectness_weight
            index = torch.arange(n, device=self.device)[:, None].expand(n, k).flatten()
            scores, classes = scores.flatten(), classes.flatten()
            keep = scores >= self.score_thresh
            index, scores, classes = index[keep], scores[keep], classes[keep]
            result = Instances(
                tuple(size),
                pred_boxes=Boxes(p.boxes[index]),
                scores=scores,
                pred_classes=classes,
            )
            if p.mask_probs is not None:
                result.pred_mask_probs = p.mask_probs[index]
            height = int(item.get("height", size[0]))
            width = int(item.get("width", size[1]))
            out = detector_postprocess(result, height, width, self.mask_threshold)
            if p.mask_probs is None:
                out.pred_masks = resize_masks(p.masks[index], (height, width))
            out.pred_names = [names[start + int(i)] for i in index]
            out.proposal_index = index
            outputs.append({"instances": out})
            start += n
        return outputs
