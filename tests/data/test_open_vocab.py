"""The open-vocabulary split of registered datasets: training vocabularies and annotations."""

from __future__ import annotations

import pytest
import torch

from ovvision.data import vocabulary_for_dataset
from ovvision.data.catalog import MetadataCatalog
from ovvision.structures import Vocabulary


def test_vocabulary_for_dataset_follows_the_dataset_class_order():
    name = "modeling_test_vocabulary_dataset"
    if name not in MetadataCatalog.list():
        MetadataCatalog.get(name).set(thing_classes=["star", "circle"])
    vocab = Vocabulary(["circle", "square", "star"], torch.eye(3), is_novel=[False, False, True])
    aligned = vocabulary_for_dataset(vocab, name)
    assert aligned.names == ["star", "circle"]
    assert torch.equal(aligned.embeddings, torch.eye(3)[[2, 0]])
    assert aligned.is_novel.tolist() == [True, False]
    other = "modeling_test_vocabulary_dataset_2"
    if other not in MetadataCatalog.list():
        MetadataCatalog.get(other).set(thing_classes=["square"])
    with pytest.raises(ValueError, match=f"class 'square' of dataset '{other}'"):
        vocabulary_for_dataset(Vocabulary(["star", "circle"], torch.eye(2)), other)


def _register_cup_lamp(tmp_path, name: str) -> None:
    """A user's COCO json with classes cup (id 7) and lamp (id 9); lamp is held out as novel."""
    from ovvision.data import register_coco_ov_instances

    from ._helpers import write_image, write_json

    images, annotations = [], []
    for i in range(3):
        write_image(str(tmp_path / "images" / f"{i}.png"), 40, 30, seed=i)
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 40, "height": 30})
        for j, category in enumerate((7, 9) if i < 2 else (9,)):
            box = [2.0 + 15 * j, 3.0, 10.0, 12.0]
            annotations.append(
                {"id": len(annotations) + 1, "image_id": i + 1, "category_id": category,
                 "bbox": box, "area": 120.0, "iscrowd": 0}
            )  # fmt: skip
    categories = [{"id": 7, "name": "cup"}, {"id": 9, "name": "lamp"}]
    data = {"images": images, "annotations": annotations, "categories": categories}
    json_file = write_json(str(tmp_path / "instances.json"), data)
    register_coco_ov_instances(name, json_file, str(tmp_path / "images"), novel_classes=["lamp"])


def test_a_custom_datasets_novel_classes_never_reach_training(tmp_path, unique_name, caplog):
    from ovvision.data import get_detection_dataset_dicts

    name = unique_name("my_train")
    _register_cup_lamp(tmp_path, name)
    # a vocabulary that knows nothing of the split: both classes look seen
    vocabulary = Vocabulary(["cup", "lamp"], torch.eye(2))
    assert vocabulary_for_dataset(vocabulary, name).is_novel.tolist() == [False, True]
    with caplog.at_level("WARNING"):
        train = get_detection_dataset_dicts(name, drop_novel=True)
    lamp = MetadataCatalog.get(name).thing_classes.index("lamp")
    assert all(a["category_id"] != lamp for d in train for a in d["annotations"])
    assert "Dropped 3 annotations of novel classes ['lamp']" in caplog.text
    # the image that had only a lamp is left without annotations and filtered as empty
    assert len(train) == 2
    # evaluation keeps every annotation
    evaluation = get_detection_dataset_dicts(name, filter_empty=False)
    assert sum(len(d["annotations"]) for d in evaluation) == 5


def test_the_evaluator_reports_a_custom_datasets_novel_classes_as_novel(tmp_path, unique_name):
    from ovvision.data import DatasetCatalog
    from ovvision.evaluation.coco_ov import COCOOpenVocabEvaluator
    from ovvision.structures import Boxes, Instances

    name = unique_name("my_val")
    _register_cup_lamp(tmp_path, name)
    evaluator = COCOOpenVocabEvaluator.from_dataset(name)
    evaluator.reset()
    for d in DatasetCatalog.get(name):
        cups = [a for a in d["annotations"] if a["category_id"] == 0]  # perfect on cup only
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in cups)]
        instances = Instances(
            (d["height"], d["width"]),
            pred_boxes=Boxes(torch.tensor(boxes).reshape(-1, 4)),
            scores=torch.ones(len(cups)),
            pred_classes=torch.zeros(len(cups), dtype=torch.int64),
        )
        evaluator.process([{"image_id": d["image_id"]}], [{"instances": instances}])
    bbox = evaluator.evaluate()["bbox"]
    assert bbox["AP50-base"] == pytest.approx(100.0)
    assert bbox["AP50-novel"] == pytest.approx(0.0)
    assert bbox["num_classes_novel"] == 1
