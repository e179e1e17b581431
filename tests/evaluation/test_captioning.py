"""Caption evaluation: BLEU-4 / CIDEr-D against pycocoevalcap run on the files, object mentions."""

from __future__ import annotations

import json
import re

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocotools.coco import COCO

from ovvision.evaluation.captioning import (
    CAPTION_RESULTS_FILE,
    CaptionEvaluator,
    caption_scores,
    evaluate_caption_files,
)
from ovvision.structures import ClassList

CLASSES = ClassList(["circle", "square", "star"], [], [False, False, True])
REFERENCES = {
    1: ["A red circle and a blue square.", "a circle left of a square"],
    2: ["two yellow stars", "Stars, two of them!"],
    3: ["an empty picture", "nothing at all here"],
}
PREDICTIONS = {1: "a red circle and a star", 2: "two yellow stars", 3: "a square"}
# image id -> category ids (1 circle, 2 square, 3 star)
INSTANCES = {1: [1, 2, 2], 2: [3, 3], 3: []}


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    images = [{"id": i, "file_name": f"{i}.png", "height": 8, "width": 8} for i in REFERENCES]
    captions = [{"id": 10 * i + k, "image_id": i, "caption": c}
                for i, refs in REFERENCES.items() for k, c in enumerate(refs)]  # fmt: skip
    anns = [{"id": 100 * i + k, "image_id": i, "category_id": c, "bbox": [0, 0, 2, 2],
             "area": 4, "iscrowd": 0}
            for i, cats in INSTANCES.items() for k, c in enumerate(cats)]  # fmt: skip
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES.names)]
    paths = {k: str(tmp_path / f"{k}.json") for k in ("captions", "instances", "results")}
    for key, content in (
        ("captions", {"images": images, "annotations": captions}),
        ("instances", {"images": images, "annotations": anns, "categories": categories}),
        ("results", [{"image_id": i, "caption": c} for i, c in PREDICTIONS.items()]),
    ):
        with open(paths[key], "w") as f:
            json.dump(content, f)
    return paths


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def test_scores_equal_pycocoevalcap_run_directly_on_the_files(files):
    coco = COCO(files["captions"])
    results = coco.loadRes(files["results"])
    ids = sorted(results.getImgIds())
    gts = {i: [_words(a["caption"]) for a in coco.imgToAnns[i]] for i in ids}
    res = {i: [_words(a["caption"]) for a in results.imgToAnns[i]] for i in ids}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)

    metrics = evaluate_caption_files(
        files["results"], files["captions"], files["instances"], CLASSES
    )["caption"]
    assert metrics["BLEU-4"] == pytest.approx(100 * bleu[3], abs=1e-9)
    assert metrics["CIDEr-D"] == pytest.approx(100 * cider, abs=1e-9)
    assert 0 < metrics["BLEU-4"] < 100 and metrics["CIDEr-D"] > 0


def test_object_mentions_base_and_novel_apart(files):
    metrics = evaluate_caption_files(
        files["results"], files["captions"], files["instances"], CLASSES
    )["caption"]
    # image 1: circle named and present, square present not named, star named not present;
    # image 2: star named and present; image 3: square named, nothing present
    assert metrics["mention_recall_base"] == pytest.approx(50.0)  # circle of {circle, square}
    assert metrics["mention_precision_base"] == pytest.approx(50.0)  # circle of {circle, square}
    assert metrics["mention_recall_novel"] == pytest.approx(100.0)  # star in image 2
    assert metrics["mention_precision_novel"] == pytest.approx(50.0)  # 1 of 2 star mentions
    assert (metrics["present_base"], metrics["mentioned_novel"]) == (2.0, 2.0)


def test_nothing_present_or_mentioned_is_none_not_a_crash():
    evaluator = CaptionEvaluator(CLASSES, {1: [0]}, {1: ["a circle"]})
    evaluator.process([{"image_id": 1}], [{"caption": "a circle"}])
    metrics = evaluator.evaluate()["caption"]
    assert metrics["mention_recall_novel"] is None and metrics["mention_precision_novel"] is None
    assert metrics["mention_recall_base"] == 100.0


def test_identical_captions_score_the_maximum_and_results_are_written(tmp_path):
    evaluator = CaptionEvaluator(CLASSES, {1: [0]}, output_dir=str(tmp_path))
    evaluator.process(
        [{"image_id": 1, "captions": ["a big red circle on the left"]}],
        [{"caption": "A big red circle on the left."}],
    )
    metrics = evaluator.evaluate()["caption"]
    assert metrics["BLEU-4"] == pytest.approx(100.0, abs=1e-4)
    written = json.loads((tmp_path / CAPTION_RESULTS_FILE).read_text())
    assert written == [{"caption": "A big red circle on the left.", "image_id": 1}]


def test_a_prediction_without_references_names_the_image():
    with pytest.raises(ValueError, match=r"\[7\]"):
        caption_scores({1: ["a circle"]}, {1: "a circle", 7: "a star"})


def test_an_unreadable_image_counts_as_an_empty_caption():
    evaluator = CaptionEvaluator(CLASSES, {1: [0], 2: [2]}, REFERENCES)
    evaluator.process([{"image_id": 1}], [{"caption": "a red circle and a blue square"}])
    evaluator.process_unreadable([{"image_id": 2, "file_name": "2.png"}])
    metrics = evaluator.evaluate()["caption"]
    assert metrics["present_novel"] == 1.0 and metrics["mention_recall_novel"] == 0.0
