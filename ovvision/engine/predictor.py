"""``Predictor``: a trained model on single images, with a vocabulary the user chooses."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from ovvision.checkpoint import Checkpointer
from ovvision.config import CfgNode, get_cfg
from ovvision.modeling.text import VocabularyLike
from ovvision.structures import Instances, Vocabulary

from .dataset_vocabulary import use_training_vocabulary
from .defaults import prepare_datasets_and_files


class Predictor:
    """Run a trained detector on one image at a time.

    Example::

        predictor = Predictor("configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml", "model_final.pth")
        predictor.set_vocabulary(["star", "heart", "crescent"])
        instances = predictor("photo.jpg")  # pred_boxes, scores, pred_classes, pred_masks

    Args:
        config: a YAML path or a config node.
        weights: checkpoint of the model (loaded strictly, see ``MODEL.WEIGHTS_ALLOWED_*``).
        opts: extra ``KEY VALUE`` overrides.
        device: overrides ``MODEL.DEVICE``.

    Raises:
        MissingFileError: a file named by a path key (``MODEL.TEXT_ENCODER.PRETRAINED``, ...,
            and ``weights`` as ``MODEL.WEIGHTS``) does not exist; the message names the key.
        DatasetEntryError: a malformed ``DATASETS.REGISTER`` entry.
    """

    def __init__(
        self,
        config: str | CfgNode,
        weights: str,
        opts: Sequence[str] = (),
        device: str | None = None,
    ):
        from ovvision.data.transforms import build_augmentation
        from ovvision.modeling import build_model

        cfg = get_cfg()
        if isinstance(config, CfgNode):
            cfg.merge_from_other_cfg(config)
        else:
            cfg.merge_from_file(config)
        cfg.merge_from_list(list(opts))
        if device is not None:
            cfg.MODEL.DEVICE = device
        cfg.MODEL.WEIGHTS = weights
        cfg.freeze()
        # The training classes come from DATASETS.TRAIN[0], which may be a DATASETS.REGISTER one.
        prepare_datasets_and_files(cfg, datasets={})
        self.cfg = cfg
        self.model = build_model(cfg)
        self.model.eval()
        # the vocabulary of the config, before narrowing to the training classes
        self.configured_vocabulary = use_training_vocabulary(self.model, cfg, strict=False)
        Checkpointer(
            self.model,
            allowed_missing_keys=cfg.MODEL.WEIGHTS_ALLOWED_MISSING,
            allowed_unexpected_keys=cfg.MODEL.WEIGHTS_ALLOWED_UNEXPECTED,
        ).load(weights, checkpointables=[])
        self.augmentations = build_augmentation(cfg, is_train=False)
        self.max_image_pixels = cfg.INPUT.MAX_IMAGE_PIXELS

    @property
    def class_names(self) -> list[str]:
        """Names of the classes predictions index into (``pred_classes``)."""
        return list(self.model.class_names)

    @property
    def vocabulary(self) -> Vocabulary:
        """The classes detected now (names, synonyms, embeddings, novel flags)."""
        return self.model.vocabulary

    def set_vocabulary(self, vocabulary: VocabularyLike) -> None:
        """Detect these classes from now on: a Vocabulary, a ClassList, or names with optional
        ``|``-separated synonyms (embedded with the model's text encoder)."""
        self.model.set_vocabulary(vocabulary)

    def prepare(self, image: str | os.PathLike | np.ndarray) -> dict[str, Any]:
        """The model input for a path or an ``ndarray[H, W, 3]`` uint8 RGB image."""
        from ovvision.data import read_image

        if isinstance(image, str | os.PathLike):
            image = read_image(image, "RGB", self.max_image_pixels)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"Predictor expects an RGB uint8 array [H, W, 3], got {image.dtype} "
                f"{tuple(image.shape)}"
            )
        height, width = image.shape[:2]
        tensor = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
        for transform in self.augmentations:
            tensor = transform(tensor)
        return {
            "image": tensor.as_subclass(torch.Tensor).contiguous(),
            "height": height,
            "width": width,
        }

    @torch.no_grad()
    def __call__(self, image: str | os.PathLike | np.ndarray) -> Instances:
        """Predictions for one image, in its original pixel coordinates, on the CPU."""
        outputs = self.model([self.prepare(image)])
        return outputs[0]["instances"].to("cpu")
