"""Text encoders on open_clip: names, project configs, loading saved weights, both towers."""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch

from ovvision.modeling.text import (
    create_text_encoder,
    list_text_encoders,
    register_project_model_configs,
)

TINY = "OVShapes-CLIP-Tiny"


def test_list_text_encoders_has_open_clip_and_project_configs() -> None:
    names = list_text_encoders()
    assert {"ViT-B-16", "RN50", TINY} <= set(names)
    with_tags = list_text_encoders(with_pretrained_tags=True)
    assert "openai" in with_tags["ViT-B-16"]
    assert with_tags[TINY] == []


@pytest.mark.parametrize("name", register_project_model_configs())
def test_every_project_config_runs_forward_and_backward(name: str) -> None:
    encoder = create_text_encoder(name)
    size = encoder.image_preprocess_cfg["size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    images = torch.randn(2, 3, *size)
    image_features = encoder.encode_image(images)
    text_features = encoder(encoder.tokenize(["a red circle", "a blue square"]))
    assert image_features.shape == (2, encoder.embed_dim)
    assert text_features.shape == (2, encoder.embed_dim)
    (image_features @ text_features.T).sum().backward()
    assert encoder.image_tower.conv1.weight.grad is not None
    assert encoder.text_tower.token_embedding.weight.grad is not None


def test_saved_random_model_loads_back_with_identical_embeddings(tiny_checkpoint: Path) -> None:
    torch.manual_seed(0)
    reference = open_clip.create_model(TINY).eval()
    loaded = create_text_encoder(TINY, pretrained=tiny_checkpoint)
    fresh = create_text_encoder(TINY)  # other random weights: the comparison can fail
    prompts = ["a photo of a cat.", "a green triangle", "ünïcödé ✓"]
    with torch.no_grad():
        expected = reference.encode_text(open_clip.get_tokenizer(TINY)(prompts), normalize=True)
        images = torch.randn(2, 3, 48, 48)
        expected_images = reference.encode_image(images, normalize=True)
    assert torch.equal(loaded.encode_text(prompts), expected)
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(images), expected_images)
    assert not torch.allclose(fresh.encode_text(prompts), expected, atol=1e-3)


def test_checkpoint_with_state_dict_key_loads(tiny_checkpoint: Path, tmp_path: Path) -> None:
    state = torch.load(tiny_checkpoint, weights_only=True)
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": state, "iteration": 3}, wrapped)
    a = create_text_encoder(TINY, pretrained=tiny_checkpoint).encode_text(["x"])
    b = create_text_encoder(TINY, pretrained=wrapped).encode_text(["x"])
    assert torch.equal(a, b)


def test_bad_names_and_weights_raise_clear_errors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown text encoder 'ViT-Nope'"):
        create_text_encoder("ViT-Nope")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        create_text_encoder(TINY, pretrained=tmp_path / "missing.pt")
    with pytest.raises(RuntimeError, match="tiny_clip.pt"):
        create_text_encoder("RN50", pretrained=tiny_checkpoint)  # weights of another architecture
    engine_checkpoint = tmp_path / "model_final.pth"
    torch.save({"model": torch.load(tiny_checkpoint, weights_only=True), "iteration": 9},
               engine_checkpoint)  # fmt: skip
    with pytest.raises(RuntimeError, match="engine checkpoints"):
        create_text_encoder(TINY, pretrained=engine_checkpoint)


def test_weights_id_identifies_the_weights(tiny_checkpoint: Path, tmp_path: Path) -> None:
    a = create_text_encoder(TINY, pretrained=tiny_checkpoint)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(tiny_checkpoint.read_bytes())
    assert create_text_encoder(TINY, pretrained=copy).weights_id == a.weights_id
    assert a.weights_id.startswith("file-sha256:")
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["logit_scale"] = state["logit_scale"] + 1
    torch.save(state, copy)
    assert create_text_encoder(TINY, pretrained=copy).weights_id != a.weights_id
    torch.manual_seed(1)
    r1 = create_text_encoder(TINY).weights_id
    torch.manual_seed(1)
    assert create_text_encoder(TINY).weights_id == r1
    assert r1.startswith("sha256:")


def test_weights_id_follows_weights_loaded_later(tiny_checkpoint: Path) -> None:
    """A detector checkpoint loaded into the encoder changes its weights: cached embeddings of the
    weights it was built with must not be served for them (the key follows the parameters)."""
    torch.manual_seed(7)
    random = create_text_encoder(TINY)
    before = random.weights_id
    trained = torch.load(tiny_checkpoint, weights_only=True)
    random.model.load_state_dict(trained)
    after = random.weights_id
    assert after != before
    torch.manual_seed(1)
    again = create_text_encoder(TINY)
    again.model.load_state_dict(trained)
    assert again.weights_id == after  # the same weights give the same key, however they came
    from_file = create_text_encoder(TINY, pretrained=tiny_checkpoint)
    file_id = from_file.weights_id
    assert file_id.startswith("file-sha256:")
    with torch.no_grad():
        from_file.model.logit_scale.add_(1.0)
    assert from_file.weights_id not in (file_id, after)


def test_num_tokens_counts_before_truncation(encoder) -> None:
    text = "a " + "very " * 40 + "long prompt"
    n = encoder.num_tokens(text)
    assert n == len(encoder.tokenizer.encode(text)) + 2
    assert n > encoder.context_length
    tokens = encoder.tokenize([text, "a cat"])
    assert tokens.shape == (2, encoder.context_length)
    assert (tokens[1] != 0).sum() == encoder.num_tokens("a cat")
