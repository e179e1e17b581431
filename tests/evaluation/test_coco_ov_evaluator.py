"""COCOOpenVocabEvaluator: predictions in, COCO results and open-vocabulary metrics out."""

from __future__ import annotations

import json
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.coco import COCO as PyCOCO

from ovvision.config import get_cfg
from ovvision.evaluation import (
    COCOOpenVocabEvaluator,
    build_evaluator,
    save_eval_results,
)
from ovvision.structures import Boxes, Instances

from ._fixtures import (
    inputs_of,
    make_coco_gt,
    make_predictions,
    read_json,
    results_to_outputs,
    run_evaluator,
    write_json,
)
from ._references import reference_eval

STANDARD_KEYS = {"AP", "AP50", "AP75", "AR@1", "AR@10", "AR@100"}


def perfect_outputs(gt_path):
    """One exact detection (box and mask) per non-crowd ground truth."""
    coco = PyCOCO(gt_path)
    to_contiguous = {c: i for i, c in enumerate(sorted(coco.getCatIds()))}
    outputs = {}
    for image_id, image in coco.imgs.items():
        anns = [a for a in coco.imgToAnns[image_id] if not a["iscrowd"]]
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        masks = [coco.annToMask(a) for a in anns]
        size = (image["height"], image["width"])
        outputs[image_id] = {
            "instances": Instances(
                size,
                pred_boxes=Boxes(boxes),
                scores=torch.linspace(1.0, 0.5, len(anns)),
                pred_classes=torch.tensor([to_contiguous[a["category_id"]] for a in anns]),
                pred_masks=torch.from_numpy(
                    np.stack(masks) if masks else np.zeros((0, *size), np.uint8)
                ).bool(),
            )
        }
    return outputs


def test_perfect_predictions_give_ap_100(tmp_path):
    gt = make_coco_gt(5, num_images=10, crowd_prob=0.2)
    gt_path = write_json(tmp_path / "gt.json", gt)
    metrics = run_evaluator(COCOOpenVocabEvaluator(gt_json=gt_path), gt, perfect_outputs(gt_path))
    assert set(metrics) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        for key in ("AP", "AP50", "AP75", "AR@100"):
            assert metrics[task][key] == pytest.approx(100.0), (task, key)


def test_zero_detections_give_zero_and_empty_results_file(tmp_path):
    gt = make_coco_gt(5, num_images=4)
    gt_path = write_json(tmp_path / "gt.json", gt)
    empty = results_to_outputs(gt, [])
    evaluator = COCOOpenVocabEvaluator(gt_json=gt_path, output_dir=tmp_path / "out")
    metrics = run_evaluator(evaluator, gt, empty)
    for task in ("bbox", "segm"):
        for key in STANDARD_KEYS:
            assert metrics[task][key] == 0.0, (task, key)
        for key in ("APs", "APm", "APl"):  # 0, or NaN for an area range without ground truth
            assert metrics[task][key] == 0.0 or math.isnan(metrics[task][key])
    assert (tmp_path / "out" / "coco_instances_results.json").read_text() == "[]"


def test_outputs_without_fields_are_zero_detections_and_missing_fields_raise(tmp_path):
    gt = make_coco_gt(5, num_images=3)
    gt_path = write_json(tmp_path / "gt.json", gt)
    bare = {img["id"]: Instances((img["height"], img["width"])) for img in gt["images"]}
    metrics = run_evaluator(COCOOpenVocabEvaluator(gt_json=gt_path), gt, bare)
    assert set(metrics) == {"bbox"} and metrics["bbox"]["AP"] == 0.0
    image = gt["images"][0]
    no_scores = Instances(
        (image["height"], image["width"]),
        pred_boxes=Boxes(torch.zeros(1, 4)),
        pred_classes=torch.zeros(1, dtype=torch.int64),
    )
    with pytest.raises(ValueError, match=rf"image_id {image['id']} have no field 'scores'"):
        COCOOpenVocabEvaluator(gt_json=gt_path).process(inputs_of(gt)[:1], [no_scores])


def test_zero_detections_without_any_ground_truth_are_undefined_not_a_crash(tmp_path):
    gt = make_coco_gt(5, num_images=3, max_per_image=0)
    gt_path = write_json(tmp_path / "gt.json", gt)
    metrics = run_evaluator(COCOOpenVocabEvaluator(gt_json=gt_path), gt, results_to_outputs(gt, []))
    assert math.isnan(metrics["bbox"]["AP"])
    assert metrics["bbox"]["num_classes_without_gt"] == 4
    path = save_eval_results(metrics, tmp_path)
    assert read_json(path)["bbox"]["AP"] is None  # NaN is written as null


def test_metrics_equal_pycocotools_on_the_written_results(tmp_path):
    gt = make_coco_gt(2, num_images=12)
    gt_path = write_json(tmp_path / "gt.json", gt)
    outputs = results_to_outputs(gt, make_predictions(gt, seed=9))
    evaluator = COCOOpenVocabEvaluator(gt_json=gt_path, output_dir=tmp_path)
    metrics = run_evaluator(evaluator, gt, outputs)
    written = read_json(tmp_path / "coco_instances_results.json")
    for task in ("bbox", "segm"):
        ref = reference_eval(gt_path, written, task)
        assert metrics[task]["AP"] == pytest.approx(100 * ref.stats[0], abs=1e-2)
        assert metrics[task]["APs"] == pytest.approx(100 * ref.stats[3], abs=1e-2)
        assert metrics[task]["AR@10"] == pytest.approx(100 * ref.stats[7], abs=1e-2)


@pytest.mark.parametrize("custom_map", [False, True])
def test_non_contiguous_ids_round_trip(tmp_path, custom_map):
    gt = make_coco_gt(4, num_images=6)
    gt_path = write_json(tmp_path / "gt.json", gt)
    results = make_predictions(gt, seed=1)
    id_map = None
    outputs = results_to_outputs(gt, results)
    if custom_map:  # contiguous ids in reverse json order: 90 -> 0, 7 -> 1, ...
        id_map = {90: 0, 7: 1, 3: 2, 1: 3}
        for out in outputs.values():
            out["instances"].pred_classes = 3 - out["instances"].pred_classes
    evaluator = COCOOpenVocabEvaluator(
        gt_json=gt_path, dataset_id_to_contiguous_id=id_map, output_dir=tmp_path
    )
    run_evaluator(evaluator, gt, outputs)
    written = read_json(tmp_path / "coco_instances_results.json")

    def key(r):  # boxes and scores went through float32
        box = tuple(round(v, 2) for v in r["bbox"])
        return (
            r["image_id"],
            r["category_id"],
            round(r["score"], 5),
            box,
            r["segmentation"]["counts"],
        )

    assert sorted(map(key, written)) == sorted(map(key, results))
    assert {r["category_id"] for r in written} == {r["category_id"] for r in results}


def test_predicted_class_the_dataset_lacks_raises(tmp_path):
    gt = make_coco_gt(4, num_images=2)
    gt_path = write_json(tmp_path / "gt.json", gt)
    outputs = results_to_outputs(gt, make_predictions(gt, seed=1, miss_prob=0.0))
    image_id = gt["images"][1]["id"]
    instances = outputs[image_id]["instances"]
    instances.pred_classes = torch.full_like(instances.pred_classes, 4)  # 4 classes: 0..3
    evaluator = COCOOpenVocabEvaluator(gt_json=gt_path)
    with pytest.raises(ValueError, match=rf"{image_id}.*class 4"):
        run_evaluator(evaluator, gt, outputs)


def test_id_map_naming_an_absent_category_raises(tmp_path):
    gt_path = write_json(tmp_path / "gt.json", make_coco_gt(4, num_images=2))
    with pytest.raises(ValueError, match=r"\[2\]"):
        COCOOpenVocabEvaluator(
            gt_json=gt_path, dataset_id_to_contiguous_id={1: 0, 2: 1, 7: 2, 90: 3}
        )


def _crowded_outputs(gt, num_dets):
    image = gt["images"][0]
    ann = next(a for a in gt["annotations"] if a["image_id"] == image["id"])
    x, y, w, h = ann["bbox"]
    boxes = torch.tensor([[x, y, x + w, y + h]] * num_dets, dtype=torch.float32)
    scores = torch.linspace(0.01, 0.99, num_dets)[torch.randperm(num_dets)]
    instances = Instances(
        (image["height"], image["width"]),
        pred_boxes=Boxes(boxes),
        scores=scores,
        pred_classes=torch.zeros(num_dets, dtype=torch.int64),
    )
    return image, {image["id"]: {"instances": instances}}, scores


def test_detection_cap_reaches_the_evaluator_and_is_reported(tmp_path):
    gt = make_coco_gt(4, num_images=3, max_per_image=3)
    gt["images"] = gt["images"][:1]
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] == gt["images"][0]["id"]]
    gt_path = write_json(tmp_path / "gt.json", gt)
    image, outputs, scores = _crowded_outputs(gt, 150)
    evaluator = COCOOpenVocabEvaluator(gt_json=gt_path, output_dir=tmp_path)
    metrics = run_evaluator(evaluator, gt, outputs)
    assert metrics["bbox"]["max_dets_per_image"] == 100
    assert metrics["bbox"]["num_dets_over_cap"] == 50
    written = read_json(tmp_path / "coco_instances_results.json")
    assert len(written) == 100
    kept = sorted(r["score"] for r in written)
    assert kept == pytest.approx(sorted(scores.tolist())[50:])


def test_novel_and_base_ap50_on_a_hand_made_fixture(tmp_path):
    """Known answers: cat 100, dog 0 (base); zebra 100, yak 50 (novel); emu has no ground
    truth and is left out, although it has a detection."""
    names = {10: "cat", 20: "dog", 30: "zebra", 40: "yak", 50: "emu"}
    box = [10.0, 10.0, 40.0, 40.0]
    poly = [[10.0, 10.0, 50.0, 10.0, 50.0, 50.0, 10.0, 50.0]]
    gt = {
        "images": [{"id": i, "height": 100, "width": 100} for i in (1, 2, 3, 4)],
        "annotations": [
            {"id": i, "image_id": i, "category_id": c, "bbox": box, "area": 1600.0,
             "segmentation": poly, "iscrowd": 0}
            for i, c in ((1, 10), (2, 20), (3, 30), (4, 40))
        ],
        "categories": [{"id": c, "name": n} for c, n in names.items()],
    }  # fmt: skip
    gt_path = write_json(tmp_path / "gt.json", gt)
    far = [60.0, 60.0, 30.0, 30.0]
    detections = [  # (image, class, box, score)
        (1, 10, box, 0.9),
        (2, 20, far, 0.9),
        (3, 30, box, 0.9),
        (1, 40, box, 0.8),  # a yak where there is none, ranked above the true yak
        (4, 40, box, 0.5),
        (2, 50, box, 0.7),
    ]
    results = [
        {"image_id": i, "category_id": c, "bbox": b, "score": s,
         "segmentation": mask_util.frPyObjects([[b[0], b[1], b[0] + b[2], b[1], b[0] + b[2],
                                                 b[1] + b[3], b[0], b[1] + b[3]]], 100, 100)[0]}
        for i, c, b, s in detections
    ]  # fmt: skip
    for r in results:
        r["segmentation"]["counts"] = r["segmentation"]["counts"].decode("ascii")
    evaluator = COCOOpenVocabEvaluator(
        gt_json=gt_path, base_classes=["cat", "dog"], novel_classes=["zebra", "yak", "emu"]
    )
    metrics = run_evaluator(evaluator, gt, results_to_outputs(gt, results))
    for task in ("bbox", "segm"):
        m = metrics[task]
        assert m["AP50"] == pytest.approx(62.5)
        assert m["AP50-base"] == pytest.approx(50.0)
        assert m["AP50-novel"] == pytest.approx(75.0)
        assert (m["num_classes_base"], m["num_classes_novel"]) == (2, 2)
        assert m["num_classes_without_gt"] == 1


def test_split_from_the_categories_split_field_and_unknown_names(tmp_path):
    splits = {1: "seen", 3: "base", 7: "unseen", 90: "novel"}
    gt = make_coco_gt(2, num_images=8, splits=splits)
    gt_path = write_json(tmp_path / "gt.json", gt)
    outputs = results_to_outputs(gt, make_predictions(gt, seed=3))
    from_field = run_evaluator(COCOOpenVocabEvaluator(gt_json=gt_path), gt, outputs)
    from_args = run_evaluator(
        COCOOpenVocabEvaluator(gt_json=gt_path, novel_classes=["class_7", "class_90"]), gt, outputs
    )
    assert from_field == from_args
    assert from_field["bbox"]["AP50-base"] != from_field["bbox"]["AP50-novel"]
    with pytest.raises(ValueError, match="giraffe"):
        COCOOpenVocabEvaluator(gt_json=gt_path, novel_classes=["giraffe"])


def test_results_file_is_sorted_and_byte_identical_across_reruns(tmp_path):
    gt = make_coco_gt(6, num_images=10)
    gt_path = write_json(tmp_path / "gt.json", gt)
    outputs = results_to_outputs(gt, make_predictions(gt, seed=6))
    files = []
    for run, (order, batch) in enumerate([(None, 3), (list(range(9, -1, -1)), 4)]):
        out = tmp_path / f"run{run}"
        evaluator = COCOOpenVocabEvaluator(gt_json=gt_path, output_dir=out)
        run_evaluator(evaluator, gt, outputs, batch_size=batch, order=order)
        files.append((out / "coco_instances_results.json").read_bytes())
    assert files[0] == files[1]
    written = json.loads(files[0])
    keys = [(r["image_id"], -r["score"]) for r in written]
    assert keys == sorted(keys)


def test_processing_an_image_twice_raises(tmp_path):
    gt = make_coco_gt(6, num_images=3)
    gt_path = write_json(tmp_path / "gt.json", gt)
    outputs = results_to_outputs(gt, make_predictions(gt, seed=6))
    evaluator = COCOOpenVocabEvaluator(gt_json=gt_path)
    inputs = inputs_of(gt)
    evaluator.process(inputs, [outputs[d["image_id"]] for d in inputs])
    evaluator.process(inputs[:1], [outputs[inputs[0]["image_id"]]])
    with pytest.raises(ValueError, match=str(inputs[0]["image_id"])):
        evaluator.evaluate()


def test_masks_of_the_wrong_size_raise_naming_the_image(tmp_path):
    gt = make_coco_gt(6, num_images=2)
    gt_path = write_json(tmp_path / "gt.json", gt)
    inputs = inputs_of(gt)
    inputs[0]["height"] += 1
    outputs = results_to_outputs(gt, make_predictions(gt, seed=6, miss_prob=0.0))
    evaluator = COCOOpenVocabEvaluator(gt_json=gt_path)
    with pytest.raises(ValueError, match=rf"image_id {inputs[0]['image_id']}"):
        evaluator.process(inputs, [outputs[d["image_id"]] for d in inputs])


def test_built_from_config_and_a_registered_dataset(tmp_path):
    from ovvision.data import catalog

    gt = make_coco_gt(7, num_images=6, splits={1: "base", 3: "base", 7: "novel", 90: "novel"})
    gt_path = write_json(tmp_path / "gt.json", gt)
    name = f"test_eval_coco_ov_{tmp_path.name}"
    catalog.MetadataCatalog.get(name).set(
        json_file=gt_path,
        evaluator_type="coco_ov",
        thing_classes=["one", "three", "seven", "ninety"],
        thing_dataset_id_to_contiguous_id={1: 0, 3: 1, 7: 2, 90: 3},
        base_classes=["one", "three"],
        novel_classes=["seven", "ninety"],
    )
    cfg = get_cfg()
    cfg.TEST.DETECTIONS_PER_IMAGE = 2
    try:
        evaluator = build_evaluator(cfg, name, output_dir=str(tmp_path))
        from_name = COCOOpenVocabEvaluator.from_dataset(name, max_dets_per_image=2)
    finally:
        catalog.MetadataCatalog.remove(name)
    assert isinstance(evaluator, COCOOpenVocabEvaluator)
    outputs = results_to_outputs(gt, make_predictions(gt, seed=3))
    metrics = run_evaluator(evaluator, gt, outputs)
    explicit = COCOOpenVocabEvaluator(
        gt_json=gt_path, novel_classes=["class_7", "class_90"], max_dets_per_image=2
    )
    assert metrics == run_evaluator(explicit, gt, outputs) == run_evaluator(from_name, gt, outputs)
    assert metrics["bbox"]["max_dets_per_image"] == 2
    assert metrics["bbox"]["num_dets_over_cap"] > 0


def test_box_only_ground_truth_skips_segm_unless_asked(tmp_path):
    gt = make_coco_gt(8, num_images=4)
    for ann in gt["annotations"]:
        del ann["segmentation"]
    gt_path = write_json(tmp_path / "gt.json", gt)
    outputs = results_to_outputs(gt, make_predictions(gt, seed=8))  # with pred_masks
    metrics = run_evaluator(COCOOpenVocabEvaluator(gt_json=gt_path), gt, outputs)
    assert set(metrics) == {"bbox"}
    with pytest.raises(ValueError, match="segmentation"):
        run_evaluator(COCOOpenVocabEvaluator(gt_json=gt_path, tasks=["segm"]), gt, outputs)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_outputs_give_the_same_results_file(tmp_path):
    gt = make_coco_gt(9, num_images=5)
    gt_path = write_json(tmp_path / "gt.json", gt)
    outputs = results_to_outputs(gt, make_predictions(gt, seed=9))
    on_gpu = {k: {"instances": v["instances"].to("cuda")} for k, v in outputs.items()}
    files = []
    for name, outs in (("cpu", outputs), ("cuda", on_gpu)):
        run_evaluator(COCOOpenVocabEvaluator(gt_json=gt_path, output_dir=tmp_path / name), gt, outs)
        files.append((tmp_path / name / "coco_instances_results.json").read_bytes())
    assert files[0] == files[1]
