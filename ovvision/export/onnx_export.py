"""OV-RCNN inference as one traceable graph, exported to ONNX with the vocabulary as an input.

:class:`ExportableOVRCNN` re-composes a trained :class:`OVRCNN`'s parts (backbone, RPN, region
classifier, box decoding, CLIP crop-score fusion, mask head) for one image, with every size
taken from tensor shapes so that the traced graph keeps the image's height and width, the
number of proposals and the number of classes dynamic. The classes are graph inputs
(``class_embeddings [C, D]`` and ``class_seen [C]``, the latter only with CLIP fusion, the one
part that reads it): a new vocabulary is a new embeddings file, not a new export.

ROIAlign exports as the ONNX ``RoiAlign`` operator from both paths the model can take:
torchvision's operator (the reference, which registers its own ONNX symbolic) and the project's
compiled ``ovvision::roi_align`` (whose symbolic :func:`register_onnx_symbolics` adds). NMS is
torchvision's, exported as ``NonMaxSuppression``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.onnx import symbolic_helper
from torchvision.ops import clip_boxes_to_image, roi_align

from ovvision.modeling.clip_regions import clip_class_probs, fuse_scores
from ovvision.modeling.meta_arch.ovrcnn import OVRCNN
from ovvision.structures import ClassEmbeddings, ImageList, square_boxes

# ONNX RoiAlign takes its pixel-alignment mode (torchvision's ``aligned``) from opset 16 on.
OPSET_VERSION = 17
INPUT_NAMES = ["image", "class_embeddings", "class_seen"]
OUTPUT_NAMES = ["boxes", "scores", "classes", "mask_probs"]
DYNAMIC_AXES = {
    "image": {1: "height", 2: "width"},
    "class_embeddings": {0: "num_classes"},
    "class_seen": {0: "num_classes"},
    "boxes": {0: "num_detections"},
    "scores": {0: "num_detections"},
    "classes": {0: "num_detections"},
    "mask_probs": {0: "num_detections"},
}


class ExportableOVRCNN(nn.Module):
    """One-image OV-RCNN inference with the vocabulary as inputs (the exported graph).

    Equal to ``model.inference([...], do_postprocess=False)`` for the same image and vocabulary
    (tested); sizes stay symbolic when traced.

    Args:
        model: a trained OVRCNN in eval mode (its parts are shared, not copied).
        clip_fusion: include the CLIP crop-score fusion when the model has one (``crops`` source);
            False exports the detector's own scores only.
    """

    def __init__(self, model: OVRCNN, clip_fusion: bool = True):
        super().__init__()
        heads = model.roi_heads
        fusion = heads.fusion
        if fusion is not None and fusion.box_embedder.source != "crops":
            raise ValueError(
                "ONNX export supports CLIP score fusion from 'crops' only "
                f"(MODEL.CLIP_BOX_EMBEDDER.SOURCE={fusion.box_embedder.source!r}); "
                "export with clip_fusion=False"
            )
        self.model = model
        self.clip_fusion = clip_fusion and fusion is not None

    @property
    def embed_dim(self) -> int:
        """D, the dimension the ``class_embeddings`` input must have."""
        return int(self.model.roi_heads.classifier.embed_dim)

    def forward(
        self, image: torch.Tensor, class_embeddings: torch.Tensor, class_seen: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Detect the given classes in one image.

        Args:
            image: ``uint8 Tensor[3, H, W]`` RGB, already resized as the model expects.
            class_embeddings: ``Tensor[C, D]`` unit-norm text embeddings of the classes.
            class_seen: ``BoolTensor[C]``, classes seen in detector training (CLIP fusion leans
                on CLIP for the others; unused without fusion).

        Returns:
            ``boxes Tensor[N, 4]`` (x1, y1, x2, y2 in input pixels), ``scores Tensor[N]``,
            ``classes LongTensor[N]`` (rows of ``class_embeddings``) and ``mask_probs
            Tensor[N, M, M]`` box-relative mask probabilities (``M = 0`` columns without a mask
            head).
        """
        model, heads = self.model, self.model.roi_heads
        images = self._preprocess(image)
        size = images.image_sizes[0]
        classes = ClassEmbeddings(class_embeddings.float(), class_seen.to(torch.bool))
        features = model.backbone(images.tensor)
        proposals, _, _ = model.proposal_generator(images, features)
        roi = heads.box_pooler(features, proposals, images.image_sizes)
        embeddings, deltas = heads.classifier(roi)
        logits = heads.classifier.class_logits(embeddings, classes.embeddings)
        probs = heads.classifier.class_probs(logits)
        for loss in heads.auxiliary_losses:
            probs = loss.fuse_inference_probs(roi, probs, classes, heads.classifier)
        boxes = heads.box_coder.decode_single(deltas, proposals[0])
        boxes = clip_boxes_to_image(boxes, size)
        if self.clip_fusion:
            boxes, probs = self._fuse(images, boxes, probs, classes)
        result = heads._select(boxes, probs, size)
        det_boxes = result.pred_boxes.tensor
        if heads.mask_head is None:
            mask_probs = det_boxes.new_zeros(det_boxes.shape[0], 0, 0)
        else:
            mask_roi = heads.mask_pooler(features, [det_boxes], images.image_sizes)
            mask_probs = heads.mask_head(mask_roi).sigmoid()
        return det_boxes, result.scores, result.pred_classes, mask_probs

    def _preprocess(self, image: torch.Tensor) -> ImageList:
        """Normalise and pad to the backbone's divisibility, with sizes read from the tensor."""
        model = self.model
        height, width = image.shape[-2], image.shape[-1]
        x = (image.to(torch.float32) - model.pixel_mean) / model.pixel_std
        s = model.backbone.size_divisibility
        if s > 1:
            x = F.pad(
                x, (0, (width + s - 1) // s * s - width, 0, (height + s - 1) // s * s - height)
            )
        return ImageList(x[None], [(height, width)])

    def _fuse(
        self,
        images: ImageList,
        boxes: torch.Tensor,
        probs: torch.Tensor,
        classes: ClassEmbeddings,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:class:`ClipScoreFusion` with the ``crops`` source for one image.

        The module's own code splits per image by Python lengths and builds the crop squares'
        image-size limit with ``torch.tensor``; both would freeze the traced sizes.
        """
        fusion = self.model.roi_heads.fusion
        embedder = fusion.box_embedder
        if fusion.max_regions > 0:
            boxes, probs = boxes[: fusion.max_regions], probs[: fusion.max_regions]
        squares = _square_boxes_in_image(boxes, embedder.crop_scale, images.image_sizes[0])
        crops = roi_align(images.tensor, [squares], embedder.tower.image_size, 1.0, 2, aligned=True)
        crops = crops * embedder._scale + embedder._shift
        clip_emb = F.normalize(embedder.tower.encode_crops(crops).float(), dim=-1)
        clip_probs = clip_class_probs(clip_emb, classes.embeddings, fusion.temperature)
        fused = fuse_scores(probs, clip_probs, classes.seen, fusion.alpha_seen, fusion.beta_unseen)
        return boxes, fused


def _square_boxes_in_image(
    boxes: torch.Tensor, scale: float, image_size: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """:func:`square_boxes` with its shift into the image computed from traced sizes.

    Args:
        boxes: ``Tensor[K, 4]``.
        scale: side of the square relative to the longer box side.
        image_size: ``(h, w)`` as ints or 0-dim tensors.

    Returns:
        ``Tensor[K, 4]`` squares, shifted inside the image where they fit.
    """
    centred = square_boxes(boxes, scale)
    start, side = centred[:, :2], centred[:, 2:3] - centred[:, 0:1]
    h, w = image_size
    wh = torch.stack([torch.as_tensor(w), torch.as_tensor(h)]).to(boxes.dtype)
    limit = wh[None] - side
    start = torch.where(limit >= 0, torch.minimum(start.clamp(min=0), limit.clamp(min=0)), start)
    return torch.cat([start, start + side], dim=1)


@symbolic_helper.parse_args("v", "v", "f", "i", "i", "i", "i")
def _ovvision_roi_align_symbolic(
    g, input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned
):
    """ONNX ``RoiAlign`` for ``ovvision::roi_align`` (same semantics as torchvision's op)."""
    index = g.op("Gather", rois, g.op("Constant", value_t=torch.tensor(0)), axis_i=1)
    index = g.op("Cast", index, to_i=torch.onnx.TensorProtoDataType.INT64)
    coords = g.op("Gather", rois, g.op("Constant", value_t=torch.tensor([1, 2, 3, 4])), axis_i=1)
    return g.op(
        "RoiAlign",
        input,
        coords,
        index,
        coordinate_transformation_mode_s="half_pixel" if aligned else "output_half_pixel",
        spatial_scale_f=spatial_scale,
        output_height_i=pooled_height,
        output_width_i=pooled_width,
        sampling_ratio_i=max(sampling_ratio, 0),  # both: <= 0 means adaptive
    )


def register_onnx_symbolics() -> None:
    """Let ``torch.onnx.export`` (TorchScript path) translate the project's compiled ROIAlign."""
    torch.onnx.register_custom_op_symbolic("ovvision::roi_align", _ovvision_roi_align_symbolic, 16)


def export_onnx(
    model: OVRCNN,
    path: str | Path,
    sample_image: torch.Tensor,
    clip_fusion: bool = True,
    metadata: dict[str, str] | None = None,
) -> ExportableOVRCNN:
    """Trace ``model`` on ``sample_image`` with its current vocabulary and write the ONNX graph.

    The TorchScript-based exporter is used: torchvision's detection ops carry ONNX symbolics for
    it and its tracing keeps H, W, the proposal count and C symbolic.

    Args:
        model: a trained OVRCNN (put in eval mode here).
        path: the ``.onnx`` file to write.
        sample_image: ``uint8 Tensor[3, H, W]`` to trace with; choose one on which the model
            detects something, so that every branch is recorded.
        clip_fusion: see :class:`ExportableOVRCNN`.
        metadata: ``metadata_props`` written into the graph (e.g. the test resize); the model's
            ``embed_dim``, ``mask_threshold`` and ``clip_fusion`` are always added.

    Returns:
        The traced wrapper (for checks against onnxruntime).
    """
    model.eval()
    wrapper = ExportableOVRCNN(model, clip_fusion=clip_fusion).eval()
    classes = model.classes
    register_onnx_symbolics()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # Python sizes the trace freezes on purpose (pyramid strides, crop size, caps) warn too
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper,
            (sample_image, classes.embeddings.cpu(), classes.seen.cpu()),
            str(path),
            dynamo=False,
            opset_version=OPSET_VERSION,
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes=DYNAMIC_AXES,
            do_constant_folding=True,
        )
    props = {
        **(metadata or {}),
        "ovvision.embed_dim": str(wrapper.embed_dim),
        "ovvision.mask_threshold": str(model.mask_threshold),
        "ovvision.clip_fusion": str(wrapper.clip_fusion),
    }
    _set_metadata(path, props)
    return wrapper


def _set_metadata(path: Path, props: dict[str, str]) -> None:
    import onnx

    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, props)
    onnx.save(graph, str(path))
