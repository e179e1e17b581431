"""tools/train_osm.py's data helpers: stage 2 regions from an image caption dataset (COCO
Captions' format) and from OV-Shapes' object crop pairs, and the bounded image cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovvision.data import DatasetCatalog
from ovvision.data.datasets import register_coco_captions

from .._tools import load_tool

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def train_osm():
    return load_tool("train_osm")


def _write_images(folder: Path, sizes: list[tuple[int, int]]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (h, w) in enumerate(sizes):
        names.append(f"{i}.png")
        Image.fromarray(np.full((h, w, 3), 40 * i, np.uint8)).save(folder / names[-1])
    return names


def test_image_captions_become_whole_image_regions(train_osm, tmp_path: Path):
    names = _write_images(tmp_path / "images", [(30, 40), (20, 50), (10, 10)])
    captions = {
        "images": [
            {"id": i + 1, "file_name": n, "height": h, "width": w}
            for i, (n, (h, w)) in enumerate(zip(names, [(30, 40), (20, 50), (10, 10)]))
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "caption": "a dog on a sofa"},
            {"id": 2, "image_id": 1, "caption": "a brown dog"},
            {"id": 3, "image_id": 2, "caption": "two cups"},
        ],  # image 3 has no caption: no region
    }
    json_file = tmp_path / "captions.json"
    json_file.write_text(json.dumps(captions))
    name = "test_osm_stage2_captions"
    register_coco_captions(name, str(json_file), str(tmp_path / "images"))
    try:
        regions = train_osm.caption_regions(name, crop_scale=1.5)
    finally:
        DatasetCatalog.remove(name)
    first, second = str(tmp_path / "images" / names[0]), str(tmp_path / "images" / names[1])
    assert set(regions) == {first, second}
    assert [r["answer"] for r in regions[first]] == ["a dog on a sofa", "a brown dog"]
    assert all(r["box"] == [0.0, 0.0, 40.0, 30.0] and r["mask"] is None for r in regions[first])
    assert regions[second] == [{"box": [0.0, 0.0, 50.0, 20.0], "mask": None, "answer": "two cups"}]


def test_stage_3_asks_caption_regions_to_name_their_object(train_osm, tmp_path: Path):
    """With ``caption_naming`` 1 every caption region with an object name becomes a naming task
    in the ``any`` mode answered with that name; with 0 none does (captions stay captions)."""
    from ovvision.config import get_cfg
    from ovvision.modeling.osm import CAPTION_PROMPTS, NAMING_PROMPTS

    (file_name,) = _write_images(tmp_path, [(16, 16)])
    path = str(tmp_path / file_name)
    box = [0.0, 0.0, 16.0, 16.0]
    captions = {
        path: [
            {"box": box, "mask": None, "answer": "a photo of a small star"},
            {"box": box, "mask": None, "answer": "on the left"},  # no object: stays a caption
        ]
    }
    cfg = get_cfg()
    cfg.MODEL.OSM.MODES = ["any", "ov_shapes"]
    for share in (1.0, 0.0):
        batch = next(train_osm._regions_forever({}, captions, cfg, 8, 1.0, share))
        regions = [r for item in batch for r in item["regions"]]
        assert len(regions) == 8 * cfg.MODEL.OSM.REGIONS_PER_IMAGE
        assert all(r["mode"] == "any" for r in regions)
        named = {"star"} if share == 1.0 else set()
        expected = (
            {"star", "on the left"} if share == 1.0 else {"a photo of a small star", "on the left"}
        )
        assert {r["answer"] for r in regions} == expected
        for r in regions:
            assert r["prompt"] in (NAMING_PROMPTS if r["answer"] in named else CAPTION_PROMPTS)


def test_dataset_without_pairs_or_captions_names_the_key(train_osm, tmp_path: Path):
    json_file = tmp_path / "captions.json"
    json_file.write_text(json.dumps({"images": [], "annotations": []}))
    name = "test_osm_stage2_empty"
    register_coco_captions(name, str(json_file), str(tmp_path))
    try:
        with pytest.raises(ValueError, match=f"MODEL.OSM.PAIR_DATASET '{name}'"):
            train_osm.caption_regions(name, crop_scale=1.5)
    finally:
        DatasetCatalog.remove(name)


def test_image_cache_keeps_the_most_recent_images_within_its_bytes(train_osm, tmp_path: Path):
    files = [str(tmp_path / n) for n in _write_images(tmp_path, [(10, 10)] * 4)]
    images = train_osm._Images(max_bytes=2 * 300)  # two 10x10x3 images
    first = images(files[0])
    assert images(files[0]) is first  # cached
    images(files[1])
    images(files[0])  # now the most recent: files[1] goes first
    images(files[2])
    assert list(images._cache) == [files[0], files[2]] and images._bytes == 600
    assert int(images(files[3])[0, 0, 0]) == 120  # read correctly when evicting
