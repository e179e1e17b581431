"""Run an exported detector with onnxruntime, with a vocabulary file and no text encoder."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from ovvision.data.transforms import apply_test_transforms, build_augmentation
from ovvision.modeling.postprocessing import detector_postprocess
from ovvision.structures import Boxes, Instances

from .onnx_export import INPUT_NAMES
from .vocabulary_file import VocabularyArrays, VocabularyFileError, load_vocabulary


class OnnxDetector:
    """An exported OV-RCNN in an onnxruntime session, with its vocabulary.

    Args:
        model_path: the ``.onnx`` file of ``tools/export_onnx.py``.
        vocabulary: a vocabulary file path or :class:`VocabularyArrays`.
        num_threads: onnxruntime intra-op threads (0 = onnxruntime's default).
        mask_threshold: mask probability threshold when pasting masks (None: the exported
            model's).

    Raises:
        VocabularyFileError: the vocabulary's dimension is not the model's (both named).
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        vocabulary: str | os.PathLike | VocabularyArrays,
        num_threads: int = 0,
        mask_threshold: float | None = None,
    ):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name: i for i in self.session.get_inputs()}
        # class_seen only matters to the CLIP fusion: a graph without it has no such input
        missing = [name for name in INPUT_NAMES[:2] if name not in inputs]
        if missing:
            raise ValueError(f"{model_path} is not an ovvision export: it lacks inputs {missing}")
        self.embed_dim = int(inputs["class_embeddings"].shape[1])
        self._input_names = set(inputs)
        self.model_path = str(model_path)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if mask_threshold is None:
            mask_threshold = float(self.metadata.get("ovvision.mask_threshold", 0.5))
        self.mask_threshold = mask_threshold
        test_input = SimpleNamespace(
            MIN_SIZE_TEST=int(self.metadata.get("ovvision.min_size_test", 0)),
            MAX_SIZE_TEST=int(self.metadata.get("ovvision.max_size_test", 0)),
        )  # the exported config's test resize, kept in the graph's metadata
        self.augmentations = build_augmentation(SimpleNamespace(INPUT=test_input), is_train=False)
        self.set_vocabulary(vocabulary)

    def set_vocabulary(self, vocabulary: str | os.PathLike | VocabularyArrays) -> None:
        """Detect the classes of this vocabulary file (or arrays) from now on."""
        if not isinstance(vocabulary, VocabularyArrays):
            vocabulary = load_vocabulary(vocabulary, self.embed_dim)
        elif vocabulary.embeddings.shape[1] != self.embed_dim:
            raise VocabularyFileError(
                f"vocabulary embeddings have dimension {vocabulary.embeddings.shape[1]} but "
                f"{self.model_path} takes dimension {self.embed_dim}"
            )
        self.vocabulary = vocabulary

    @property
    def class_names(self) -> list[str]:
        """Names of the classes ``pred_classes`` index into."""
        return list(self.vocabulary.names)

    def prepare(self, image: np.ndarray) -> dict[str, Any]:
        """The graph input for an ``ndarray[H, W, 3]`` uint8 RGB image: resized as the exported
        config's test transform does (``INPUT.MIN_SIZE_TEST``/``MAX_SIZE_TEST`` kept in the
        graph's metadata), with the original ``height``/``width``."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected an RGB uint8 array [H, W, 3], got {image.dtype} {image.shape}"
            )
        return apply_test_transforms(image, self.augmentations)

    def run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The graph's raw outputs for ``uint8[3, H, W]``: boxes, scores, classes, mask probs."""
        feed = {
            "image": np.ascontiguousarray(image, dtype=np.uint8),
            "class_embeddings": self.vocabulary.embeddings,
            "class_seen": self.vocabulary.seen,
        }
        feed = {name: value for name, value in feed.items() if name in self._input_names}
        boxes, scores, classes, masks = self.session.run(None, feed)
        return boxes, scores, classes, masks

    def instances(self, image: torch.Tensor | np.ndarray) -> Instances:
        """Detections in the input's pixels: ``pred_boxes``, ``scores``, ``pred_classes``,
        ``pred_mask_probs`` (as the PyTorch model's ``do_postprocess=False`` output)."""
        image = np.asarray(image)
        boxes, scores, classes, masks = self.run(image)
        result = Instances(
            tuple(image.shape[-2:]),
            pred_boxes=Boxes(torch.from_numpy(boxes)),
            scores=torch.from_numpy(scores),
            pred_classes=torch.from_numpy(classes),
        )
        if masks.shape[-1] > 0:
            result.pred_mask_probs = torch.from_numpy(masks)
        return result

    def __call__(self, batched_inputs: list[dict[str, Any]]) -> list[dict[str, Instances]]:
        """The model's inference interface: per item (``"image"`` uint8 ``Tensor[3, H, W]``,
        optional ``"height"``/``"width"``) ``{"instances": Instances}`` at the original size."""
        outputs = []
        for item in batched_inputs:
            result = self.instances(item["image"])
            height = int(item.get("height", result.image_size[0]))
            width = int(item.get("width", result.image_size[1]))
            instances = detector_postprocess(result, height, width, self.mask_threshold)
            outputs.append({"instances": instances})
        return outputs
