"""ONNX export: onnxruntime against PyTorch, dynamic sizes and vocabularies, vocabulary files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from ovvision.export.compare import Parity
from ovvision.export.onnx_export import ExportableOVRCNN, export_onnx
from ovvision.export.onnx_runtime import OnnxDetector
from ovvision.export.vocabulary_file import (
    VocabularyArrays,
    VocabularyFileError,
    load_vocabulary,
    save_vocabulary,
)
from ovvision.modeling import build_model
from ovvision.structures import Vocabulary

from ..modeling.helpers import CONFIG_DIR, load_config

# The quickstart architecture (frozen CLIP ResNet tower + FPN, RPN, zero-shot classifier, CLIP
# crop-score fusion, mask head) with random weights; a low score threshold so that the random
# model's near-uniform scores still give detections.
QUICKSTART = CONFIG_DIR / "ov_shapes" / "ovrcnn_clip_rn_frozen.yaml"
LOW_THRESHOLD = ("MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0001")


def _image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """uint8 [3, H, W]: noise with a few flat rectangles (objects for the proposer)."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 80, (3, height, width), dtype=torch.uint8, generator=gen)
    for i in range(3):
        y, x = (height * i) // 4, (width * (3 - i)) // 5
        image[:, y : y + max(height // 4, 1), x : x + max(width // 4, 1)] = 60 * i + 90
    return image


def _arrays(model: torch.nn.Module) -> VocabularyArrays:
    return VocabularyArrays.from_vocabulary(model.vocabulary, model.classes.seen.cpu().numpy())


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = build_model(load_config(QUICKSTART, *LOW_THRESHOLD)).eval()
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(model, path, _image(128, 128))
    return model, path


def _compare(model: torch.nn.Module, detector: OnnxDetector, image: torch.Tensor) -> Parity:
    with torch.no_grad():
        reference = model.inference([{"image": image}], do_postprocess=False)[0]
    parity = Parity()
    parity.add("image", reference, detector.instances(image))
    assert len(reference) > 0, "the test needs detections to compare"
    return parity


@pytest.mark.parametrize(
    "size", [(128, 128), (200, 72), (72, 200), (1, 1)], ids=["square", "tall", "wide", "1x1"]
)
def test_onnxruntime_equals_pytorch_at_any_image_size(exported, size):
    model, path = exported
    detector = OnnxDetector(path, _arrays(model))
    parity = _compare(model, detector, _image(*size, seed=size[0]))
    assert parity.equal == 1, parity.as_dict()
    if size != (1, 1):  # PyTorch's pooler infers a 1x1 image's level scales from its padding
        assert parity.max_mask_abs < 1e-4, parity.as_dict()


@pytest.mark.parametrize("num_classes", [1, 50])
def test_the_number_of_classes_is_a_graph_input(exported, num_classes):
    model, path = exported
    before = model.vocabulary
    gen = torch.Generator().manual_seed(num_classes)
    embeddings = F.normalize(torch.randn(num_classes, before.dim, generator=gen), dim=1)
    try:
        model.set_vocabulary(Vocabulary([f"class {i}" for i in range(num_classes)], embeddings))
        detector = OnnxDetector(path, _arrays(model))
        parity = _compare(model, detector, _image(128, 128, seed=3))
        classes = detector.instances(_image(128, 128, seed=3)).pred_classes
    finally:
        model.set_vocabulary(before)
    assert parity.equal == 1, parity.as_dict()
    assert int(classes.max()) < num_classes


def _nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Every node, including those of If/Loop subgraphs."""
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs]:
                nodes += _nodes(sub)
    return nodes


def test_graph_uses_standard_onnx_operators_only(exported):
    _, path = exported
    graph = onnx.load(str(path)).graph
    nodes = _nodes(graph)
    assert {"RoiAlign", "NonMaxSuppression"} <= {node.op_type for node in nodes}
    assert all(node.domain in ("", "ai.onnx") for node in nodes)
    inputs = {i.name: i.type.tensor_type for i in graph.input}
    assert inputs["class_embeddings"].shape.dim[0].dim_param == "num_classes"
    assert inputs["image"].shape.dim[1].dim_param == "height"


def test_export_without_clip_fusion_equals_the_detector_scores(exported, tmp_path):
    model, _ = exported
    path = tmp_path / "no_fusion.onnx"
    wrapper = export_onnx(model, path, _image(128, 128), clip_fusion=False)
    assert not wrapper.clip_fusion and ExportableOVRCNN(model).clip_fusion
    detector = OnnxDetector(path, _arrays(model))
    image = _image(96, 112, seed=5)
    classes = model.classes
    with torch.no_grad():
        boxes, scores, labels, _ = wrapper(image, classes.embeddings, classes.seen)
    other = detector.instances(image)
    assert len(other) == len(boxes) > 0
    assert torch.allclose(other.scores, scores, atol=1e-4)
    assert detector.metadata["ovvision.clip_fusion"] == "False"


def test_vocabulary_file_round_trip(exported, tmp_path):
    model, path = exported
    arrays = _arrays(model)
    file = save_vocabulary(tmp_path / "vocabulary.npz", arrays)
    loaded = load_vocabulary(file, embed_dim=arrays.embeddings.shape[1])
    assert loaded.names == arrays.names
    assert np.array_equal(loaded.embeddings, arrays.embeddings)
    assert np.array_equal(loaded.seen, arrays.seen)
    image = _image(128, 128, seed=7)
    from_file = OnnxDetector(path, file).run(image.numpy())
    from_arrays = OnnxDetector(path, arrays).run(image.numpy())
    for a, b in zip(from_file, from_arrays):
        assert np.array_equal(a, b)


def test_vocabulary_of_another_dimension_is_refused_naming_both(exported, tmp_path):
    model, path = exported
    dim = model.vocabulary.dim
    bad = VocabularyArrays(["cat", "dog"], np.ones((2, dim + 3), np.float32), np.zeros(2, bool))
    file = save_vocabulary(tmp_path / "other_model.npz", bad)
    with pytest.raises(VocabularyFileError, match=rf"other_model\.npz.*{dim + 3}.*{dim}"):
        OnnxDetector(path, file)
    with pytest.raises(VocabularyFileError, match=rf"{dim + 3}.*{dim}"):
        OnnxDetector(path, bad)


def test_malformed_vocabulary_files_name_the_file_and_the_problem(tmp_path):
    no_names = tmp_path / "no_names.npz"
    np.savez(no_names, embeddings=np.ones((2, 4), np.float32))
    with pytest.raises(VocabularyFileError, match=r"no_names\.npz.*names"):
        load_vocabulary(no_names)
    uneven = tmp_path / "uneven.npz"
    np.savez(uneven, names=np.array(["a", "b", "c"]), embeddings=np.ones((2, 4), np.float32))
    with pytest.raises(VocabularyFileError, match=r"uneven\.npz: 3 names"):
        load_vocabulary(uneven)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(VocabularyFileError, match=r"garbage\.npz: cannot read"):
        load_vocabulary(garbage)
