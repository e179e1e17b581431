"""The instructions the language model answers: training draws one of the paraphrases, inference
always asks the first."""

from __future__ import annotations

import random

__all__ = ["CAPTION_PROMPTS", "NAMING_PROMPTS", "inference_prompt", "sample_prompt"]

NAMING_PROMPTS: tuple[str, ...] = (
    "what is in the segmentation mask ?",
    "what is the object in the mask ?",
    "name the object inside the mask .",
    "which object does the mask cover ?",
    "what is shown in the masked region ?",
)

# Stages 2 and (mixed into) 3: describe the region, the image-text pairs' task.
CAPTION_PROMPTS: tuple[str, ...] = (
    "describe the masked region .",
    "write a caption for the region .",
    "what does the region show ?",
)


def sample_prompt(prompts: tuple[str, ...], rng: random.Random) -> str:
    """One paraphrase, drawn uniformly (training)."""
    return prompts[rng.randrange(len(prompts))]


def inference_prompt(prompts: tuple[str, ...] = NAMING_PROMPTS) -> str:
    """The paraphrase used at inference: the first."""
    return prompts[0]
