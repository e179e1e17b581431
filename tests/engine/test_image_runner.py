"""Input expansion and output names of the demos (engine.image_runner, used by tools/demo.py and
tools/onnx_demo.py): distinct inputs never share an output."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovvision.engine import image_runner


@pytest.fixture(scope="module")
def demo():
    return image_runner


@pytest.fixture
def photos(tmp_path, monkeypatch) -> Path:
    """photos/{1.jpg, 1.png, notes.txt, day1/1.jpg, day2/1.jpg, day2/deep/2.png}; cwd = tmp_path."""
    for name in ("1.jpg", "1.png", "notes.txt", "day1/1.jpg", "day2/1.jpg", "day2/deep/2.png"):
        path = tmp_path / "photos" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "photos"


def _names(demo, patterns: list[str]) -> dict[str, str]:
    inputs = demo.expand_inputs(patterns)
    return {path: out for (path, _), out in zip(inputs, demo.output_names(inputs))}


def test_folder_keeps_extensions(demo, photos):
    assert _names(demo, ["photos"]) == {
        "photos/1.jpg": "1.jpg.png",
        "photos/1.png": "1.png.png",
    }


def test_recursive_glob_keeps_the_tree_below_its_root(demo, photos):
    assert _names(demo, ["photos/**/1.jpg"]) == {
        "photos/1.jpg": "1.jpg.png",
        "photos/day1/1.jpg": "day1/1.jpg.png",
        "photos/day2/1.jpg": "day2/1.jpg.png",
    }
    # The root is the glob's fixed folder, even when every match lies deeper.
    assert _names(demo, ["photos/day*/deep/*.png"]) == {
        "photos/day2/deep/2.png": "day2/deep/2.png.png"
    }


def test_files_of_different_folders_keep_their_folders(demo, photos):
    names = _names(demo, ["photos/day1/1.jpg", "photos/day2/1.jpg", str(photos / "1.jpg")])
    assert names == {
        "photos/day1/1.jpg": "day1/1.jpg.png",
        "photos/day2/1.jpg": "day2/1.jpg.png",
        str(photos / "1.jpg"): "1.jpg.png",
    }
    assert _names(demo, ["photos/day2/1.jpg"]) == {"photos/day2/1.jpg": "1.jpg.png"}


def test_folders_and_globs_together_and_repeats(demo, photos):
    names = _names(demo, ["photos/day1", "photos/day2", "photos/*.jpg", "photos/day1/1.jpg"])
    assert names == {
        "photos/day1/1.jpg": "day1/1.jpg.png",  # given twice: once
        "photos/day2/1.jpg": "day2/1.jpg.png",
        "photos/1.jpg": "1.jpg.png",
    }
    assert len(set(names.values())) == len(names)


def test_glob_without_matches_is_reported(demo, photos, caplog):
    with caplog.at_level("WARNING", logger="ovvision.demo"):
        assert demo.expand_inputs(["photos/*.webp"]) == []
    assert "photos/*.webp matches no file" in caplog.text
    assert demo.output_names([]) == []
