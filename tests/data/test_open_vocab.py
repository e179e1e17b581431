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
