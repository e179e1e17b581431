"""A tiny random causal LM with its tokenizer, saved once per session (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ovvision.modeling.osm import build_tiny_gpt2, train_word_tokenizer
from ovvision.modeling.osm.prompts import CAPTION_PROMPTS, NAMING_PROMPTS

TEXTS = [
    "a red circle",
    "two rings and a square",
    "a large blue l-shape",
    "a photo of a star",
    "there is a mug and a cup",
    *NAMING_PROMPTS,
    *CAPTION_PROMPTS,
]


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a random 2-layer GPT-2 and its word-level tokenizer (``save_pretrained``)."""
    folder = tmp_path_factory.mktemp("tiny_lm")
    tokenizer = train_word_tokenizer(TEXTS)
    torch.manual_seed(0)
    model = build_tiny_gpt2(tokenizer, dim=32, layers=2, heads=2, positions=128)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
