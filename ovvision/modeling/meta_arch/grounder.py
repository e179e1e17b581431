"""OVGrounder: open-vocabulary visual grounding (OV-VG) on a trained, frozen OV-RCNN.

An expression in, its box, score and mask out. Candidates are the detector's class-agnostic
proposals, refined by its box head. *Query selection* keeps the ``NUM_QUERIES`` candidates whose
region embeddings (the detector's, blended with CLIP crop embeddings) are most similar to the
sentence embedding; *language-guided attention* lets those queries attend to each other and to the
expression's token features; a head scores each query and refines its box; the detector's mask
head gives the mask of the chosen box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import box_iou, clip_boxes_to_image

from ovvision.config import CfgNode, configurable
from ovvision.modeling.clip_regions import ClipBoxEmbedder, build_clip_box_embedder
from ovvision.modeling.grounding import (
    GroundingHead,
    LanguageGuidedAttention,
    QueryEncoder,
    box_geometry,
    region_sentence_similarity,
    select_queries,
)
from ovvision.modeling.postprocessing import detector_postprocess
from ovvision.modeling.text import TextEncoder, VocabularyLike, encode_expressions
from ovvision.structures import Boxes, ImageList, Instances, Vocabulary
from ovvision.utils.events import current_event_storage

from .build import META_ARCH_REGISTRY
from .ovrcnn import OVRCNN, load_detector_weights

logger = logging.getLogger(__name__)

SCORINGS = ("learned", "cosine")


@dataclass
class Candidates:
    """The candidate regions of one image (at the network's input resolution).

    Attributes:
        boxes: ``Tensor[K, 4]`` refined proposal boxes (x1, y1, x2, y2).
        detector_embeddings: ``Tensor[K, D]`` unit-norm region embeddings of the detector.
        clip_embeddings: ``Tensor[K, D]`` unit-norm CLIP crop embeddings.
        image_size: ``(height, width)`` of the unpadded input.
    """

    boxes: torch.Tensor
    detector_embeddings: torch.Tensor
    clip_embeddings: torch.Tensor
    image_size: tuple[int, int]


@META_ARCH_REGISTRY.register()
class OVGrounder(nn.Module):
    """Referring-expression grounding on an OV-RCNN (``META_ARCHITECTURE: "OVGrounder"``).

    Input per image (mapper dicts): ``"image"`` and ``"expressions"``, a list of dicts with
    ``"text"`` and, in training, ``"box"`` (``Tensor[4]`` XYXY at the input resolution).

    Args:
        detector: the trained OV-RCNN (frozen with ``freeze_detector``).
        text_encoder: the detector's CLIP (token features and sentence embeddings).
        box_embedder: CLIP embeddings of boxes.
        query_encoder, attention, head: the trained grounding modules.
        num_queries: candidates kept by query selection.
        selection_nms: IoU above which a less similar candidate is skipped (0 = no NMS).
        clip_weight: weight of the CLIP crop cosine in the selection similarity.
        scoring: ``"learned"`` (head) or ``"cosine"`` (top regions by selection similarity).
        positive_iou: IoU with the target that makes a query a positive in training.
        box_loss_weight: weight of the box refinement loss.
        top_k: boxes returned per expression at inference.
        truncate_text: cut over-long expressions instead of raising.
        freeze_detector: keep the detector in eval mode without gradients.
    """

    @configurable
    def __init__(
        self,
        *,
        detector: OVRCNN,
        text_encoder: TextEncoder,
        box_embedder: ClipBoxEmbedder,
        query_encoder: QueryEncoder,
        attention: LanguageGuidedAttention,
        head: GroundingHead,
        num_queries: int = 16,
        selection_nms: float = 0.7,
        clip_weight: float = 0.5,
        scoring: str = "learned",
        positive_iou: float = 0.5,
        box_loss_weight: float = 1.0,
        top_k: int = 10,
        truncate_text: bool = False,
        freeze_detector: bool = True,
    ):
        super().__init__()
        if scoring not in SCORINGS:
            raise ValueError(f"MODEL.GROUNDER.SCORING must be one of {SCORINGS}, got {scoring!r}")
        self.detector = detector
        self.text_encoder = [text_encoder]  # a list: not a submodule, not in checkpoints
        self.box_embedder = box_embedder
        self.query_encoder = query_encoder
        self.attention = attention
        self.head = head
        self.num_queries = num_queries
        self.selection_nms = selection_nms
        self.clip_weight = clip_weight
        self.scoring = scoring
        self.positive_iou = positive_iou
        self.box_loss_weight = box_loss_weight
        self.top_k = top_k
        self.truncate_text = truncate_text
        self.freeze_detector = freeze_detector
        if freeze_detector:
            for p in self.detector.parameters():
                p.requires_grad_(False)
            self.detector.eval()

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict[str, Any]:
        g = cfg.MODEL.GROUNDER
        detector = OVRCNN(cfg)
        if g.DETECTOR_WEIGHTS:
            load_detector_weights(detector, g.DETECTOR_WEIGHTS, "MODEL.GROUNDER.DETECTOR_WEIGHTS")
        assert detector.name_embedder is not None  # OVRCNN.from_config always gives one
        text_encoder = detector.name_embedder.encoder
        fusion = detector.roi_heads.fusion
        box_embedder = (
            fusion.box_embedder
            if fusion is not None
            else build_clip_box_embedder(cfg, detector.backbone, text_encoder)
        )
        if box_embedder is None:
            raise ValueError("OVGrounder needs CLIP box embeddings: set MODEL.CLIP_BOX_EMBEDDER")
        embed_dim = detector.roi_heads.classifier.embed_dim
        token_dim = int(text_encoder.text_tower.ln_final.normalized_shape[0])
        return {
            "detector": detector,
            "text_encoder": text_encoder,
            "box_embedder": box_embedder,
            "query_encoder": QueryEncoder(
                embed_dim=embed_dim,
                dim=g.HIDDEN_DIM,
                use_detector_embeddings=g.DETECTOR_FEATURES,
            ),
            "attention": LanguageGuidedAttention(
                dim=g.HIDDEN_DIM,
                token_dim=token_dim,
                num_heads=g.NUM_HEADS,
                num_layers=g.NUM_LAYERS,
                dropout=g.DROPOUT,
            ),
            "head": GroundingHead(dim=g.HIDDEN_DIM, prior_scale=g.PRIOR_SCALE),
            "num_queries": g.NUM_QUERIES,
            "selection_nms": g.SELECTION_NMS,
            "clip_weight": g.CLIP_WEIGHT,
            "scoring": g.SCORING,
            "positive_iou": g.POSITIVE_IOU,
            "box_loss_weight": g.BOX_LOSS_WEIGHT,
            "top_k": g.TOP_K_TEST,
            "truncate_text": g.TRUNCATE_TEXT,
            "freeze_detector": g.FREEZE_DETECTOR,
        }

    # The vocabulary belongs to the detector (train_net and the Predictor set it).
    @property
    def vocabulary(self) -> Vocabulary:
        return self.detector.vocabulary

    @property
    def class_names(self) -> list[str]:
        return self.detector.class_names

    def set_vocabulary(self, vocabulary: VocabularyLike) -> None:
        self.detector.set_vocabulary(vocabulary)

    def set_training_vocabulary(self, vocabulary: VocabularyLike) -> None:
        self.detector.set_training_vocabulary(vocabulary)

    @property
    def device(self) -> torch.device:
        return self.detector.device

    @property
    def evaluable_without_weights(self) -> bool:
        """The cosine baseline has nothing trained: it runs on the detector's weights alone."""
        return self.scoring == "cosine"

    def train(self, mode: bool = True) -> OVGrounder:
        """The detector always runs as at inference (its RPN's test-time proposals, no sampling,
        batch norm statistics kept); unfrozen, it still gets the grounding loss's gradients."""
        super().train(mode)
        self.detector.eval()
        return self

    def forward(self, batched_inputs: list[dict[str, Any]]) -> dict[str, torch.Tensor] | list[dict]:
        """Training: ``{"loss_ground_cls", "loss_ground_box"}``. Inference: per image
        ``{"expressions": [{"text", "ann_id", "instances"}]}``, see :meth:`ground`."""
        if not self.training:
            return self.ground(batched_inputs)
        if self.scoring == "cosine":
            raise ValueError("MODEL.GROUNDER.SCORING 'cosine' has nothing to train; use 'learned'")
        candidates, _, _ = self.candidates(batched_inputs)
        texts, owners, targets = [], [], []
        for i, item in enumerate(batched_inputs):
            for expr in item.get("expressions", []):
                texts.append(expr["text"])
                owners.append(i)
                targets.append(torch.as_tensor(expr["box"], dtype=torch.float32))
        if not texts:  # exact zeros (sums over no element) that reach every trained parameter
            zero = sum(p.reshape(-1)[:0].sum() for p in self.parameters() if p.requires_grad)
            return {"loss_ground_cls": zero, "loss_ground_box": zero.clone()}
        selected, logits, deltas = self._score(candidates, texts, owners)
        return self._losses(candidates, owners, selected, logits, deltas, targets)

    def candidates(
        self, batched_inputs: list[dict[str, Any]]
    ) -> tuple[list[Candidates], ImageList, dict[str, torch.Tensor]]:
        """The detector's refined proposals with both region embeddings, per image; also the
        batch and the backbone features (for masks). Gradients reach the detector only in
        training with MODEL.GROUNDER.FREEZE_DETECTOR False."""
        with torch.set_grad_enabled(self.training and not self.freeze_detector):
            return self._candidates(batched_inputs)

    def _candidates(
        self, batched_inputs: list[dict[str, Any]]
    ) -> tuple[list[Candidates], ImageList, dict[str, torch.Tensor]]:
        det = self.detector
        images = det.preprocess_image(batched_inputs)
        features = det.backbone(images.tensor)
        proposals, _, _ = det.proposal_generator(images, features)
        embeddings, boxes_per_image, kept = det.roi_heads.refine_proposals(
            features, proposals, images.image_sizes
        )
        sizes = [len(p) for p in proposals]
        clip_embeddings = self.box_embedder(images, features, boxes_per_image)
        clip_chunks = clip_embeddings.split([len(b) for b in boxes_per_image])
        candidates = [
            Candidates(b, F.normalize(e[k].float(), dim=-1), c, tuple(size))
            for b, e, k, c, size in zip(
                boxes_per_image, embeddings.split(sizes), kept, clip_chunks, images.image_sizes
            )
        ]
        return candidates, images, features

    def _score(
        self, candidates: list[Candidates], texts: list[str], owners: list[int]
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Select queries for each expression and score them.

        Returns:
            ``selected``: per expression the candidate indices of its queries (``LongTensor[Q_e]``);
            ``logits`` ``Tensor[E, Q]`` (padding queries ``-inf``) and ``deltas``
            ``Tensor[E, Q, 4]``, with ``Q = NUM_QUERIES``.
        """
        q, device = self.num_queries, self.device
        if not texts:
            return [], torch.zeros(0, q, device=device), torch.zeros(0, q, 4, device=device)
        text = encode_expressions(self.text_encoder[0], texts, self.truncate_text)
        if text.truncated:
            logger.warning("expressions truncated to the context length: %s", text.truncated)
        sentence = text.sentence.to(device)
        selected, sims, det_e, clip_e, geometry = [], [], [], [], []
        for e, owner in enumerate(owners):
            c = candidates[owner]
            similarity = region_sentence_similarity(
                c.detector_embeddings, c.clip_embeddings, sentence[e], self.clip_weight
            )
            index = (
                select_queries(similarity, q, c.boxes, self.selection_nms)
                if len(similarity)
                else similarity.long()
            )
            selected.append(index)
            sims.append(_pad(similarity[index], q))
            det_e.append(_pad(c.detector_embeddings[index], q))
            clip_e.append(_pad(c.clip_embeddings[index], q))
            geometry.append(_pad(box_geometry(c.boxes[index], c.image_size), q))
        valid = torch.stack([torch.arange(q, device=device) < len(s) for s in selected])
        similarity = torch.stack(sims)
        if self.scoring == "cosine":
            logits = similarity.masked_fill(~valid, float("-inf"))
            return selected, logits, similarity.new_zeros(*similarity.shape, 4)
        queries = self.query_encoder(
            torch.stack(det_e), torch.stack(clip_e), sentence, torch.stack(geometry)
        )
        # an expression without candidates attends over its zero padding (its logits are -inf)
        attend = valid | ~valid.any(dim=1, keepdim=True)
        queries = self.attention(
            queries, text.tokens.to(device), text.mask.to(device), query_mask=attend
        )
        logits, deltas = self.head(queries, similarity)
        return selected, logits.masked_fill(~valid, float("-inf")), deltas

    def _losses(
        self,
        candidates: list[Candidates],
        owners: list[int],
        selected: list[torch.Tensor],
        logits: torch.Tensor,
        deltas: torch.Tensor,
        targets: list[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Cross-entropy towards the query that best overlaps the target (when it reaches
        ``positive_iou``) and smooth L1 of the deltas of every query that reaches it.

        Expressions whose queries all miss the target give no loss; with none left the losses
        are exact zeros (sums over no element) of the head's outputs.
        """
        coder = self.detector.roi_heads.box_coder
        rows, labels, delta_rows, delta_targets = [], [], [], []
        for e, (owner, index, target) in enumerate(zip(owners, selected, targets)):
            if not len(index):
                continue
            boxes = candidates[owner].boxes[index]
            target = target.to(boxes.device).view(1, 4)
            iou = box_iou(boxes, target)[:, 0]
            best = int(iou.argmax())
            if iou[best] < self.positive_iou:
                continue
            rows.append(e)
            labels.append(best)
            positive = torch.where(iou >= self.positive_iou)[0]
            delta_rows.append(deltas[e, positive])
            delta_targets.append(
                coder.encode_single(target.expand(len(positive), 4), boxes[positive])
            )
        self._log_positive_fraction(len(rows), len(targets))
        if not rows:
            return {
                "loss_ground_cls": logits[:0].sum(),
                "loss_ground_box": deltas[:0].sum(),
            }
        cls_loss = F.cross_entropy(
            logits[rows], torch.tensor(labels, device=logits.device), reduction="mean"
        )
        box_loss = F.smooth_l1_loss(
            torch.cat(delta_rows), torch.cat(delta_targets), beta=1.0 / 9, reduction="mean"
        )
        return {"loss_ground_cls": cls_loss, "loss_ground_box": self.box_loss_weight * box_loss}

    def _log_positive_fraction(self, positives: int, total: int) -> None:
        """Log how many expressions had a query on their target (the others give no loss)."""
        storage = current_event_storage()
        if storage is not None:  # inside a training loop
            storage.put_scalar("ground/positive_fraction", positives / max(total, 1))

    @torch.no_grad()
    def ground(
        self, batched_inputs: list[dict[str, Any]], top_k: int | None = None
    ) -> list[dict[str, Any]]:
        """Boxes (and masks) of every expression of every image.

        Args:
            batched_inputs: mapper dicts with ``"image"``, ``"expressions"`` (dicts with
                ``"text"``) and optionally the original ``"height"``/``"width"``.
            top_k: boxes per expression (default ``MODEL.GROUNDER.TOP_K_TEST``).

        Returns:
            Per image ``{"expressions": [{"text", "ann_id", "instances"}]}``; ``instances`` holds
            at most ``top_k`` boxes, best first, in the original image's pixels: ``pred_boxes``,
            ``scores`` (softmax over the queries), ``pred_classes`` (0) and, with a mask head,
            ``pred_masks`` ``BoolTensor[N, height, width]``.
        """
        top_k = self.top_k if top_k is None else top_k
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        candidates, images, features = self.candidates(batched_inputs)
        texts, owners = [], []
        for i, item in enumerate(batched_inputs):
            for expr in item.get("expressions", []):
                texts.append(expr["text"])
                owners.append(i)
        selected, logits, deltas = self._score(candidates, texts, owners)
        coder = self.detector.roi_heads.box_coder
        results: list[list[Instances]] = [[] for _ in batched_inputs]
        for e, (owner, index) in enumerate(zip(owners, selected)):
            c = candidates[owner]
            k = min(top_k, len(index))
            scores, order = logits[e].softmax(dim=0).topk(k)
            boxes = coder.decode_single(deltas[e, order], c.boxes[index[order]])
            results[owner].append(
                Instances(
                    c.image_size,
                    pred_boxes=Boxes(clip_boxes_to_image(boxes, c.image_size)),
                    scores=scores,
                    pred_classes=torch.zeros(k, dtype=torch.int64, device=boxes.device),
                )
            )
        self._add_mask_probs(images, features, results)
        outputs = []
        for item, per_image, c in zip(batched_inputs, results, candidates):
            height = int(item.get("height", c.image_size[0]))
            width = int(item.get("width", c.image_size[1]))
            outputs.append(
                {
                    "expressions": [
                        {
                            "text": expr["text"],
                            "ann_id": expr.get("ann_id"),
                            "instances": detector_postprocess(
                                result, height, width, self.detector.mask_threshold
                            ),
                        }
                        for expr, result in zip(item.get("expressions", []), per_image)
                    ]
                }
            )
        return outputs

    def _add_mask_probs(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        results: list[list[Instances]],
    ) -> None:
        """Set ``pred_mask_probs`` of every result with the detector's mask head (if any), one
        pass per batch."""
        heads = self.detector.roi_heads
        if heads.mask_head is None:
            return
        boxes = [
            torch.cat([r.pred_boxes.tensor for r in per_image])
            if per_image
            else images.tensor.new_zeros(0, 4)
            for per_image in results
        ]
        probs = heads.mask_head(heads.mask_pooler(features, boxes, images.image_sizes)).sigmoid()
        chunks = iter(probs.split([len(r) for per_image in results for r in per_image]))
        for per_image in results:
            for r in per_image:
                r.pred_mask_probs = next(chunks)


def _pad(rows: torch.Tensor, length: int) -> torch.Tensor:
    """``rows`` (``[n, ...]``, n <= length) padded with zeros to ``[length, ...]``."""
    if len(rows) == length:
        return rows
    return torch.cat([rows, rows.new_zeros(length - len(rows), *rows.shape[1:])])
