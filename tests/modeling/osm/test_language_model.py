"""The causal LM is loaded by path; bad folders raise errors naming the path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from ovvision.modeling.osm import LanguageModel, load_causal_lm


def test_saved_tiny_model_loads_by_path(tiny_lm_dir: Path):
    lm = load_causal_lm(tiny_lm_dir)
    assert isinstance(lm, LanguageModel)
    assert lm.model.__class__.__name__ == "GPT2LMHeadModel"
    ids = lm.encode("a red circle")
    assert len(ids) == 3 and lm.decode(ids) == "a red circle"
    logits = lm.logits(lm.embed(torch.tensor([ids])))
    assert logits.shape == (1, 3, lm.vocab_size) and torch.isfinite(logits).all()


def test_missing_path_names_it(tmp_path: Path):
    missing = tmp_path / "no_such_lm"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_causal_lm(missing)


def test_folder_without_tokenizer_names_it(tiny_lm_dir: Path, tmp_path: Path):
    folder = tmp_path / "model_only"
    folder.mkdir()
    for f in tiny_lm_dir.iterdir():
        if f.name in ("config.json", "generation_config.json") or f.suffix == ".safetensors":
            shutil.copy(f, folder / f.name)
    with pytest.raises(ValueError, match=f"{folder}.*no tokenizer"):
        load_causal_lm(folder)


def test_non_causal_model_names_it(tiny_lm_dir: Path, tmp_path: Path):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "bert"
    config = BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    BertModel(config).save_pretrained(folder)
    for f in tiny_lm_dir.iterdir():  # a tokenizer, so that only the model is wrong
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(f, folder / f.name)
    with pytest.raises(ValueError, match=f"{folder}.*not a causal LM"):
        load_causal_lm(folder)


def test_freeze_keeps_only_the_last_blocks_trainable(tiny_lm_dir: Path):
    lm = load_causal_lm(tiny_lm_dir)
    lm.freeze(0)
    assert not any(p.requires_grad for p in lm.parameters())
    lm.freeze(1)
    trainable = {n.split(".")[2] for n, p in lm.model.named_parameters() if p.requires_grad
                 and n.startswith("transformer.h.")}  # fmt: skip
    assert trainable == {"1"}


@torch.no_grad()
def test_input_longer_than_the_lm_takes_names_the_folder(tiny_lm_dir: Path):
    lm = load_causal_lm(tiny_lm_dir)
    limit = lm.max_positions
    assert limit == 128  # the fixture's GPT-2 config
    fits = torch.zeros(1, limit, lm.embed_dim)
    assert lm.logits(fits).shape == (1, limit, lm.vocab_size)
    with pytest.raises(ValueError, match=f"129 tokens.*'{tiny_lm_dir}'.*128 positions"):
        lm.logits(torch.zeros(1, limit + 1, lm.embed_dim))
    last, cache = lm.prefix_state(torch.zeros(2, limit - 2, lm.embed_dim))
    assert last.shape == (2, lm.vocab_size)
    rows = torch.tensor([1, 1])
    assert lm.logits_after(cache, rows, torch.zeros(2, 2, lm.embed_dim)).shape[:2] == (2, 2)
    with pytest.raises(ValueError, match=f"'{tiny_lm_dir}'"):
        lm.logits_after(cache, rows, torch.zeros(2, 3, lm.embed_dim))
