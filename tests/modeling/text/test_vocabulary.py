"""Vocabulary: prompt ensembling, synonyms, the embedding cache, bad vocabularies, built-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ovvision.config import get_cfg
from ovvision.modeling.text import (
    TEMPLATE_SETS,
    build_vocabulary,
    build_vocabulary_from_cfg,
    cache_key,
    create_text_encoder,
    vocabulary_classes,
)
from ovvision.structures import ClassList, Vocabulary

TINY = "OVShapes-CLIP-Tiny"
REPO = Path(__file__).resolve().parents[3]


def _reference_embedding(encoder, names: list[str], templates: list[str]) -> torch.Tensor:
    """Per-prompt unit embeddings averaged over names x templates, then normalised."""
    rows = [
        F.normalize(encoder.encode_text([t.format(n)]), dim=-1)[0] for n in names for t in templates
    ]
    return F.normalize(torch.stack(rows).mean(0), dim=0)


def test_template_sets_come_from_open_clip() -> None:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    assert len(TEMPLATE_SETS["openai_imagenet"]) == len(OPENAI_IMAGENET_TEMPLATES) == 80
    assert TEMPLATE_SETS["openai_imagenet"][0].format("cat") == OPENAI_IMAGENET_TEMPLATES[0]("cat")


def test_template_averaging_and_normalisation(encoder, tmp_path: Path) -> None:
    templates = list(TEMPLATE_SETS["simple_imagenet"])
    names = ["circle", "square", "star"]
    vocab = Vocabulary.from_names(names, encoder, templates=templates, cache_dir=tmp_path)
    assert vocab.embeddings.shape == (3, encoder.embed_dim)
    assert vocab.embeddings.dtype == torch.float32
    torch.testing.assert_close(vocab.embeddings.norm(dim=1), torch.ones(3))
    for i, name in enumerate(names):
        torch.testing.assert_close(
            vocab.embeddings[i], _reference_embedding(encoder, [name], templates), atol=1e-5, rtol=0
        )
    single = Vocabulary.from_names(names, encoder, templates=[templates[0]], cache_dir=tmp_path)
    assert not torch.allclose(single.embeddings, vocab.embeddings, atol=1e-3)


def test_synonyms_are_averaged_into_the_class(encoder, tmp_path: Path) -> None:
    templates = ["a photo of a {}.", "{}"]
    vocab = Vocabulary.from_names(
        ["sofa", "tv"],
        encoder,
        synonyms=[["couch"], []],
        templates=templates,
        cache_dir=tmp_path,
    )
    assert vocab.synonyms == [["couch"], []]
    expected = _reference_embedding(encoder, ["sofa", "couch"], templates)
    torch.testing.assert_close(vocab.embeddings[0], expected, atol=1e-5, rtol=0)
    plain = Vocabulary.from_names(["sofa"], encoder, templates=templates, cache_dir=tmp_path)
    assert not torch.allclose(plain.embeddings[0], vocab.embeddings[0], atol=1e-3)


def test_cache_is_hit_the_second_time_without_encoder_call(
    encoder, tmp_path: Path, count_calls
) -> None:
    counter = count_calls(encoder)
    names = ["red circle", "blue square", "green star"]
    first = Vocabulary.from_names(names, encoder, templates="simple_imagenet", cache_dir=tmp_path)
    assert counter.calls > 0
    assert len(list(tmp_path.glob("*.npy"))) == 1
    counter.calls = 0
    second = Vocabulary.from_names(names, encoder, templates="simple_imagenet", cache_dir=tmp_path)
    assert counter.calls == 0
    assert torch.equal(first.embeddings, second.embeddings)
    # a new encoder object on the same weights file hits the same entry
    again = create_text_encoder(TINY, pretrained=encoder.pretrained)
    counter_again = count_calls(again)
    third = Vocabulary.from_names(names, again, templates="simple_imagenet", cache_dir=tmp_path)
    assert counter_again.calls == 0 and torch.equal(third.embeddings, first.embeddings)
    # other templates, other names, or no cache: the encoder runs again
    Vocabulary.from_names(names, encoder, templates="identity", cache_dir=tmp_path)
    assert counter.calls > 0
    counter.calls = 0
    Vocabulary.from_names(names[:2], encoder, templates="simple_imagenet", cache_dir=tmp_path)
    assert counter.calls > 0
    counter.calls = 0
    Vocabulary.from_names(
        names, encoder, templates="simple_imagenet", cache_dir=tmp_path, use_cache=False
    )
    assert counter.calls > 0
    assert len(list(tmp_path.glob("*.npy"))) == 3


def test_cache_key_covers_model_weights_templates_and_names(
    encoder, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    classes, templates = [["cat"], ["dog"]], ["{}"]
    key = cache_key(encoder.cache_identity, classes, templates)
    assert cache_key(encoder.cache_identity, classes, templates) == key
    assert cache_key(encoder.cache_identity, [["cat"], ["dog", "puppy"]], templates) != key
    assert cache_key(encoder.cache_identity, classes, ["a {}"]) != key
    other_weights = tmp_path / "other.pt"
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["logit_scale"] += 1.0
    torch.save(state, other_weights)
    other = create_text_encoder(TINY, pretrained=other_weights)
    assert cache_key(other.cache_identity, classes, templates) != key
    encoder.name = "other-name"
    assert cache_key(encoder.cache_identity, classes, templates) != key


def test_corrupt_cache_entry_is_recomputed(encoder, tmp_path: Path, count_calls) -> None:
    first = Vocabulary.from_names(["a", "b"], encoder, templates="identity", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npy")
    np.save(entry, np.zeros((5, 3), dtype=np.float32))
    counter = count_calls(encoder)
    with pytest.warns(UserWarning, match="ignoring text-embedding cache file"):
        again = Vocabulary.from_names(["a", "b"], encoder, templates="identity", cache_dir=tmp_path)
    assert counter.calls > 0
    torch.testing.assert_close(again.embeddings, first.embeddings)


def test_empty_vocabulary_raises(encoder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        Vocabulary.from_names([], encoder, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no class names"):
        vocabulary_classes("custom", custom=" , ,")
    with pytest.raises(ValueError, match="blank"):
        Vocabulary.from_names(["cat", "  "], encoder, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="empty"):
        Vocabulary([], torch.zeros(0, 4))


def test_duplicates_are_merged_with_a_warning(encoder, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="duplicate class name") as record:
        vocab = Vocabulary.from_names(
            ["cat", "dog", "Cat", " cat "],
            encoder,
            synonyms=[["kitty"], [], ["feline"], []],
            templates="identity",
            cache_dir=tmp_path,
        )
    assert sum("duplicate class name" in str(w.message) for w in record) == 2
    assert vocab.names == ["cat", "dog"]
    assert vocab.synonyms == [["kitty", "feline"], []]
    with pytest.raises(ValueError, match="once as base and once as novel"):
        Vocabulary.from_names(["cat", "cat"], encoder, is_novel=[False, True], cache_dir=tmp_path)


def test_unicode_names(encoder, tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    with pytest.warns(UserWarning, match="duplicate"):
        vocab = Vocabulary.from_names(
            ["café", "螃蟹", "Ölfaß", decomposed], encoder, templates="identity", cache_dir=tmp_path
        )
    assert vocab.names == ["café", "螃蟹", "Ölfaß"]
    assert torch.isfinite(vocab.embeddings).all()
    assert not torch.allclose(vocab.embeddings[0], vocab.embeddings[1], atol=1e-3)
    vocab.save(tmp_path / "unicode.npy")
    loaded = Vocabulary.load(tmp_path / "unicode.npy")
    assert loaded.names == vocab.names and torch.equal(loaded.embeddings, vocab.embeddings)
    assert loaded.index(decomposed) == 0


def test_too_long_prompt_is_truncated_with_a_warning_naming_the_class(
    encoder, tmp_path: Path
) -> None:
    long_name = "extremely " * 30 + "long widget"
    with pytest.warns(UserWarning, match=f"class '{long_name}': 2 of 2 prompts") as record:
        vocab = Vocabulary.from_names(
            ["cat", long_name], encoder, templates=["{}", "a {}"], cache_dir=tmp_path
        )
    assert all("'cat'" not in str(w.message) for w in record)
    assert torch.isfinite(vocab.embeddings).all()
    torch.testing.assert_close(vocab.embeddings.norm(dim=1), torch.ones(2))


def test_bad_templates_raise(encoder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown prompt template set 'nope'"):
        Vocabulary.from_names(["cat"], encoder, templates="nope", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="exactly one"):
        Vocabulary.from_names(["cat"], encoder, templates=["a photo"], cache_dir=tmp_path)


def test_save_load_select_and_novel_mask(encoder, tmp_path: Path) -> None:
    vocab = Vocabulary.from_names(
        ["a", "b", "c"],
        encoder,
        is_novel=[False, True, False],
        templates="identity",
        cache_dir=tmp_path,
    )
    assert vocab.is_novel.tolist() == [False, True, False]
    assert vocab.is_base.tolist() == [True, False, True]
    base = vocab.select(vocab.is_base)
    assert base.names == ["a", "c"] and torch.equal(base.embeddings, vocab.embeddings[[0, 2]])
    vocab.save(tmp_path / "v.npy", model=TINY)
    loaded = Vocabulary.load(tmp_path / "v.npy")
    assert loaded.names == vocab.names
    assert torch.equal(loaded.is_novel, vocab.is_novel)
    assert torch.equal(loaded.embeddings, vocab.embeddings)
    with pytest.raises(ValueError, match="v.npy"):
        Vocabulary.load(tmp_path / "v.npy", names=["a", "b"])
    raw = tmp_path / "raw.npy"
    np.save(raw, np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="no sidecar"):
        Vocabulary.load(raw)
    assert Vocabulary.load(raw, names=["x", "y"]).embeddings.norm(dim=1).tolist() == [1.0, 1.0]


def test_builtin_class_lists(tmp_path: Path) -> None:
    coco = vocabulary_classes("coco")
    assert len(coco.names) == 80 and coco.names[0] == "person" and not any(coco.is_novel)
    coco_ov = vocabulary_classes("coco_ov")
    assert len(coco_ov.names) == 65
    assert sum(coco_ov.is_novel) == 17
    assert {"cat", "dog", "bus"} <= {n for n, v in zip(coco_ov.names, coco_ov.is_novel) if v}
    assert [n for n in coco.names if n in coco_ov.names] == coco_ov.names  # id order kept
    lvis_json = tmp_path / "lvis.json"
    lvis_json.write_text(
        json.dumps(
            {
                "categories": [
                    {
                        "id": 2,
                        "name": "aerosol_can",
                        "synonyms": ["aerosol_can", "spray_can"],
                        "frequency": "c",
                    },
                    {"id": 1, "name": "acorn", "synonyms": ["acorn"], "frequency": "r"},
                ]
            }
        )
    )
    lvis = vocabulary_classes("lvis", annotation_json=str(lvis_json))
    assert lvis.names == ["acorn", "aerosol can"]
    assert lvis.is_novel == [True, False]
    shapes = vocabulary_classes("ov_shapes")
    assert len(shapes.names) == 24 and sum(shapes.is_novel) == 6
    shapes_json = tmp_path / "shapes.json"
    shapes_json.write_text(
        json.dumps(
            {
                "categories": [
                    {"id": 2, "name": "star", "split": "novel"},
                    {"id": 1, "name": "circle", "split": "base"},
                ]
            }
        )
    )
    shapes = vocabulary_classes("ov_shapes", annotation_json=str(shapes_json))
    assert shapes.names == ["circle", "star"] and shapes.is_novel == [False, True]
    vocab_file = tmp_path / "classes.txt"
    vocab_file.write_text("# my classes\nsofa | couch\n\nteddy bear\n", encoding="utf-8")
    custom = vocabulary_classes("custom", custom=str(vocab_file))
    assert custom.names == ["sofa", "teddy bear"] and custom.synonyms == [["couch"], []]
    assert vocabulary_classes("custom", custom="a|b, c").synonyms == [["b"], []]
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        vocabulary_classes("custom", custom=str(tmp_path / "nope.txt"))
    (tmp_path / "classes").write_text("sofa\n", encoding="utf-8")  # a path without .txt: a file
    assert vocabulary_classes("custom", custom=str(tmp_path / "classes")).names == ["sofa"]


def test_a_bare_word_is_a_class_even_when_such_a_file_exists(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "person").write_text("sofa\n", encoding="utf-8")
    assert ClassList.parse("person").names == ["person"]
    assert ClassList.parse("person, dog").names == ["person", "dog"]
    assert ClassList.parse("./person").names == ["sofa"]
    with pytest.raises(FileNotFoundError, match="missing.json"):
        vocabulary_classes("lvis", annotation_json=str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="unknown vocabulary 'imagenet'"):
        vocabulary_classes("imagenet")


def test_build_vocabulary_and_from_cfg(encoder, tmp_path: Path) -> None:
    vocab = build_vocabulary("coco_ov", encoder, templates="identity", cache_dir=tmp_path)
    assert vocab.embeddings.shape == (65, encoder.embed_dim)
    assert int(vocab.is_novel.sum()) == 17
    vocab.save(tmp_path / "coco_ov.npy")
    cfg = get_cfg()
    cfg.VOCABULARY.NAME = "coco_ov"
    cfg.VOCABULARY.EMBEDDINGS = str(tmp_path / "coco_ov.npy")
    from_file = build_vocabulary_from_cfg(cfg)
    assert torch.equal(from_file.embeddings, vocab.embeddings)
    assert torch.equal(from_file.is_novel, vocab.is_novel)
    cfg.VOCABULARY.EMBEDDINGS = ""
    cfg.VOCABULARY.NAME = "custom"
    cfg.VOCABULARY.CUSTOM = "circle,square|box"
    cfg.VOCABULARY.CUSTOM_TEMPLATES = ["a {}"]
    cfg.VOCABULARY.CACHE_DIR = str(tmp_path)
    cfg.MODEL.TEXT_ENCODER.NAME = TINY
    cfg.MODEL.TEXT_ENCODER.PRETRAINED = encoder.pretrained
    from_cfg = build_vocabulary_from_cfg(cfg)
    direct = Vocabulary.from_names(
        ["circle", "square"],
        encoder,
        synonyms=[[], ["box"]],
        templates=["a {}"],
        cache_dir=tmp_path,
    )
    assert torch.equal(from_cfg.embeddings, direct.embeddings)


def test_dump_text_embeddings_tool(encoder, tmp_path: Path) -> None:
    out = tmp_path / "custom.npy"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "dump_text_embeddings.py"),
            "--vocabulary",
            "custom",
            "--custom-vocabulary",
            "circle,square|box",
            "--model",
            TINY,
            "--pretrained",
            encoder.pretrained,
            "--templates",
            "simple_imagenet",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--output",
            str(out),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    dumped = Vocabulary.load(out)
    direct = Vocabulary.from_names(
        ["circle", "square"],
        encoder,
        synonyms=[[], ["box"]],
        templates="simple_imagenet",
        use_cache=False,
    )
    assert dumped.names == ["circle", "square"]
    torch.testing.assert_close(dumped.embeddings, direct.embeddings)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model"] == TINY and meta["weights_id"] == encoder.weights_id
