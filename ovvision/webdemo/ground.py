"""The web demo's ``ground`` mode: the box of a referring expression ("the red star left of the
moon") from a grounding model such as ``OVGrounder``, through ``Predictor.ground``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ovvision.utils.visualizer import ClassPalette

from .inputs import DEFAULT_LIMITS, DemoInputError, DemoLimits
from .modes import DEMO_MODE_REGISTRY, DemoResult, draw_result


class GroundMode:
    """The best box of an expression (its ``top_k`` best with ``top_k > 1``), if it scores at
    least the threshold.

    Args:
        predictor: a Predictor whose model grounds expressions (has ``ground``).
        limits: ``max_vocabulary_chars`` caps the expression's length.
        top_k: boxes asked of the model per expression.
    """

    name = "ground"
    text_label = "Expression: the object to find, e.g. 'the red star left of the moon'"

    def __init__(self, predictor: Any, limits: DemoLimits = DEFAULT_LIMITS, top_k: int = 1):
        if not hasattr(predictor.model, "ground"):
            raise ValueError(
                f"the 'ground' mode needs a grounding model; {type(predictor.model).__name__} "
                "does not ground expressions"
            )
        self.predictor = predictor
        self.limits = limits
        self.top_k = top_k
        self.palette = ClassPalette()

    def __call__(self, image: np.ndarray, text: str, threshold: float) -> DemoResult:
        expression = " ".join((text or "").split())
        if not expression:
            raise DemoInputError("Type the expression of the object to find.")
        if len(expression) > self.limits.max_vocabulary_chars:
            raise DemoInputError(
                f"The expression has {len(expression)} characters; at most "
                f"{self.limits.max_vocabulary_chars} are accepted."
            )
        try:
            instances = self.predictor.ground(image, expression, top_k=self.top_k)
        except ValueError as e:  # over the text encoder's context length
            raise DemoInputError(str(e)) from None
        instances = instances[instances.scores >= threshold]
        instances.pred_classes = instances.pred_classes.new_zeros(len(instances))
        return draw_result(image, instances, [expression], self.palette)


@DEMO_MODE_REGISTRY.register()
def ground(
    config: str, weights: str, opts: Sequence[str] = (), limits: DemoLimits = DEFAULT_LIMITS
) -> GroundMode:
    """The ``ground`` mode: the grounding model of ``config`` with ``weights``."""
    from ovvision.engine.predictor import Predictor

    return GroundMode(Predictor(config, weights, opts=opts), limits)
