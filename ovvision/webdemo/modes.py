"""The web demo's modes: what happens to an image and a text, one registry entry per mode.

A mode is built once per server from a config and weights (the model loads once) and then
called per request. ``detect`` (an open-vocabulary detector through the Predictor) is built in;
``ground`` (a referring expression) and ``name`` (open-ended naming) appear when a builder is
registered under that name in :data:`DEMO_MODE_REGISTRY` and the user passes its model
(``tools/web_demo.py --mode ground CONFIG WEIGHTS``). A new mode goes in its own module of this
package (``ground.py``: a class with ``name``, ``text_label`` and ``__call__`` returning a
:class:`DemoResult`, and a ``@DEMO_MODE_REGISTRY.register()`` builder), imported in the
package's ``__init__``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from ovvision.evaluation.coco_results import instances_to_coco_results
from ovvision.structures import Instances, Vocabulary
from ovvision.utils.registry import Registry
from ovvision.utils.visualizer import DEFAULT_MIN_DRAW_SIZE, ClassPalette, draw_predictions

from .inputs import DEFAULT_LIMITS, DemoLimits, parse_vocabulary

logger = logging.getLogger(__name__)

DEMO_MODE_REGISTRY = Registry("DEMO_MODE")
DEMO_MODE_REGISTRY.__doc__ = """
Builders of web-demo modes, registered under the mode's name ("detect", "ground", "name"):
``builder(config, weights, opts=(), limits=DEFAULT_LIMITS)`` returns a ``DemoMode``.
"""


@dataclass
class DemoResult:
    """One request's answer.

    Attributes:
        image: ``ndarray[H', W', 3]`` uint8: the input with boxes, masks and labels drawn
            (enlarged when the input is small).
        rows: per detection ``[name, score, x1, y1, x2, y2]`` (input pixels), best first.
        coco: the detections as COCO results (``bbox`` XYWH, ``category_id`` indexing the
            request's classes, ``category_name``).
    """

    image: np.ndarray
    rows: list[list[Any]]
    coco: list[dict[str, Any]]


class DemoMode(Protocol):
    """A mode of the demo; ``text_label`` names what the text box holds in this mode."""

    name: str
    text_label: str

    def __call__(self, image: np.ndarray, text: str, threshold: float) -> DemoResult: ...


def draw_result(
    image: np.ndarray, instances: Instances, names: Sequence[str], palette: ClassPalette
) -> DemoResult:
    """Draw ``instances`` (best first) and tabulate them.

    Args:
        image: ``ndarray[H, W, 3]`` uint8 RGB.
        instances: ``pred_boxes``, ``scores``, ``pred_classes`` (indexing ``names``) and
            optionally ``pred_masks`` (``BoolTensor[N, H, W]``).
        names: class names.
        palette: colours by class name, shared by every request of the server.
    """
    order = torch.argsort(instances.scores, descending=True)
    instances = instances[order]
    classes = instances.pred_classes.tolist()
    scores = instances.scores.tolist()
    boxes = instances.pred_boxes.tensor
    drawn = draw_predictions(
        image, instances, names, colors=[palette(names[c]) for c in classes],
        min_size=DEFAULT_MIN_DRAW_SIZE,
    )  # fmt: skip
    rows = [
        [names[c], round(s, 4), *[round(v, 1) for v in box]]
        for c, s, box in zip(classes, scores, boxes.tolist())
    ]
    coco, _ = instances_to_coco_results(instances, 0, {i: i for i in range(len(names))})
    for result in coco:
        result.pop("image_id", None)
        result["category_name"] = names[result["category_id"]]
    return DemoResult(drawn, rows, coco)


class DetectMode:
    """Open-vocabulary detection with a :class:`~ovvision.engine.predictor.Predictor`.

    Embedded vocabularies are kept (least recently used first out), so a request naming the
    same classes as an earlier one does not run the text encoder again.

    Args:
        predictor: the loaded detector.
        limits: caps on the vocabulary.
        cache_size: vocabularies kept.
    """

    name = "detect"
    text_label = "Vocabulary: class names separated by commas, synonyms by | (moon|crescent)"

    def __init__(self, predictor: Any, limits: DemoLimits = DEFAULT_LIMITS, cache_size: int = 16):
        self.predictor = predictor
        self.limits = limits
        self.cache_size = cache_size
        self.palette = ClassPalette()
        self.num_embedded = 0  # vocabularies run through the text encoder
        self._vocabularies: OrderedDict[tuple, Vocabulary] = OrderedDict()

    def set_vocabulary(self, text: str) -> list[str]:
        """Detect the classes of ``text`` from now on; returns the class names."""
        classes = parse_vocabulary(text, self.limits)
        key = tuple(tuple(prompts) for prompts in classes.class_prompts)
        vocabulary = self._vocabularies.get(key)
        if vocabulary is None:
            self.predictor.set_vocabulary(classes)
            vocabulary = self.predictor.vocabulary
            self.num_embedded += 1
            self._vocabularies[key] = vocabulary
            while len(self._vocabularies) > self.cache_size:
                self._vocabularies.popitem(last=False)
        else:
            self._vocabularies.move_to_end(key)
            self.predictor.set_vocabulary(vocabulary)
        return list(classes.names)

    def __call__(self, image: np.ndarray, text: str, threshold: float) -> DemoResult:
        names = self.set_vocabulary(text)
        instances = self.predictor(image)
        instances = instances[instances.scores >= threshold]
        return draw_result(image, instances, names, self.palette)


@DEMO_MODE_REGISTRY.register()
def detect(
    config: str, weights: str, opts: Sequence[str] = (), limits: DemoLimits = DEFAULT_LIMITS
) -> DetectMode:
    """The ``detect`` mode: the detector of ``config`` with ``weights``, on the CPU or the
    config's ``MODEL.DEVICE``."""
    from ovvision.engine.predictor import Predictor

    return DetectMode(Predictor(config, weights, opts=opts), limits)


def build_demo_mode(
    name: str,
    config: str,
    weights: str,
    opts: Sequence[str] = (),
    limits: DemoLimits = DEFAULT_LIMITS,
) -> DemoMode:
    """Build the mode registered as ``name``.

    Raises:
        KeyError: no builder is registered under ``name`` (the message lists those that are).
    """
    if name not in DEMO_MODE_REGISTRY:
        known = sorted(k for k, _ in DEMO_MODE_REGISTRY)
        raise KeyError(f"no web-demo mode '{name}' in this install (available: {known})")
    return DEMO_MODE_REGISTRY.get(name)(config, weights, opts=opts, limits=limits)
