"""``Predictor``: a trained model on images or batches, with a vocabulary the user chooses."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ovvision.checkpoint import Checkpointer
from ovvision.config import CfgNode, get_cfg
from ovvision.data.transforms import apply_test_transforms, build_augmentation
from ovvision.modeling.text import VocabularyLike
from ovvision.structures import Instances, Vocabulary

from .dataset_vocabulary import use_training_vocabulary
from .defaults import prepare_datasets_and_files

# What the Predictor takes as one image: a file path, a PIL image, or an RGB uint8 ndarray[H, W, 3].
ImageInput = str | os.PathLike | Image.Image | np.ndarray


class Predictor:
    """Run a trained detector on images: file paths, PIL images or RGB uint8 arrays, one at a
    time or a list of them as one batch.

    Example::

        predictor = Predictor("configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml", "model_final.pth")
        predictor.set_vocabulary(["star", "heart", "crescent"])
        instances = predictor("photo.jpg")  # pred_boxes, scores, pred_classes, pred_masks
        batch = predictor(["a.jpg", Image.open("b.png"), rgb_array])  # list of Instances

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

    @torch.no_grad()
    def describe(self, image: ImageInput, beam_size: int | None = None) -> str:
        """A caption of the image, written by the model's caption generator (CGG).

        Args:
            image: see :meth:`prepare`.
            beam_size: 1 = greedy, > 1 = beam search; None = ``MODEL.CAPTION_GENERATION.BEAM_SIZE``.

        Raises:
            ValueError: the model has no caption generator.
        """
        if not hasattr(self.model, "describe"):
            raise ValueError(f"{type(self.model).__name__} does not write captions")
        return self.model.describe([self.prepare(image)], beam_size)[0]

    def prepare(self, image: ImageInput) -> dict[str, Any]:
        """The model input for one image.

        Args:
            image: a file path (read with EXIF orientation, any mode converted to RGB), a PIL
                image (same rules), or an ``ndarray[H, W, 3]`` of RGB uint8.

        Returns:
            ``{"image": Tensor[3, h, w] uint8 (resized for the model), "height": H, "width": W}``.

        Raises:
            ImageReadError: a path cannot be read (the message names it), or the image has more
                pixels than ``INPUT.MAX_IMAGE_PIXELS``.
            ValueError: an array that is not RGB uint8 ``[H, W, 3]``.
            TypeError: any other kind of input.
        """
        return apply_test_transforms(self._rgb_array(image), self.augmentations)

    def _rgb_array(self, image: ImageInput) -> np.ndarray:
        """``ndarray[H, W, 3]`` RGB uint8 of a path, a PIL image or an array (checked)."""
        from ovvision.data import ImageTooLargeError, pil_to_rgb_array, read_image

        if isinstance(image, str | os.PathLike):
            return read_image(image, "RGB", self.max_image_pixels)
        if isinstance(image, Image.Image):
            image = pil_to_rgb_array(image, "PIL image", self.max_image_pixels)
        if not isinstance(image, np.ndarray):
            raise TypeError(
                "Predictor takes a file path, a PIL image or an RGB uint8 ndarray[H, W, 3] "
                f"(or a list of them), got {type(image).__name__}"
            )
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"Predictor expects an RGB uint8 array [H, W, 3], got {image.dtype} "
                f"{tuple(image.shape)}"
            )
        pixels = image.shape[0] * image.shape[1]
        if self.max_image_pixels and pixels > self.max_image_pixels:
            raise ImageTooLargeError(
                f"Image array of {image.shape[1]}x{image.shape[0]} = {pixels} pixels, more than "
                f"the cap of {self.max_image_pixels} (INPUT.MAX_IMAGE_PIXELS)"
            )
        return image

    @torch.no_grad()
    def __call__(self, image: ImageInput | list[ImageInput]) -> Instances | list[Instances]:
        """Predictions in each image's original pixel coordinates, on the CPU.

        Args:
            image: one image (see :meth:`prepare`), or a list or tuple of them, run as one batch.

        Returns:
            One ``Instances`` for one image; a list of them, in order, for a list.

        Raises:
            ImageReadError, ValueError, TypeError: as :meth:`prepare`; in a batch the message
                starts with the input's position (``batch input 3: ...``).
        """
        if not isinstance(image, list | tuple):
            return self.model([self.prepare(image)])[0]["instances"].to("cpu")
        inputs = []
        for i, item in enumerate(image):
            try:
                inputs.append(self.prepare(item))
            except (OSError, ValueError, TypeError) as e:
                raise type(e)(f"batch input {i}: {e}") from e
        if not inputs:
            return []
        return [output["instances"].to("cpu") for output in self.model(inputs)]

    @torch.no_grad()
    def ground(self, image: ImageInput, text: str, top_k: int = 1) -> Instances:
        """The box, score and mask of a referring expression (a grounding model, e.g.
        ``OVGrounder``): ``top_k`` boxes, best first, in the image's pixels, on the CPU.

        Raises:
            TypeError: the model does not ground expressions.
            ValueError: an empty expression, or one over the text encoder's context length
                (unless ``MODEL.GROUNDER.TRUNCATE_TEXT``); the message names it.
        """
        if not hasattr(self.model, "ground"):
            raise TypeError(f"{type(self.model).__name__} does not ground expressions")
        item = {**self.prepare(image), "expressions": [{"text": text}]}
        (output,) = self.model.ground([item], top_k=top_k)
        return output["expressions"][0]["instances"].to("cpu")

    @torch.no_grad()
    def name_masks(self, image: ImageInput) -> Instances:
        """Open-ended recognition (a generative mask classifier, e.g. ``OSMClassifier``): every
        proposed mask with its generated free-text name, no vocabulary needed. Returns, in the
        image's pixels on the CPU, ``pred_boxes``, ``pred_masks``, ``scores`` (objectness) and
        ``pred_names`` (a list of str).

        Raises:
            TypeError: the model does not generate names.
        """
        if not hasattr(self.model, "name_masks"):
            raise TypeError(f"{type(self.model).__name__} does not generate mask names")
        return self.model.name_masks([self.prepare(image)])[0]["instances"].to("cpu")
