"""Query selection, language-guided attention and the noun-phrase chunker on toy inputs."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from ovvision.modeling.grounding import (
    LanguageGuidedAttention,
    QueryEncoder,
    box_geometry,
    noun_phrases,
    region_sentence_similarity,
    select_queries,
)


def test_query_selection_picks_the_regions_most_similar_to_the_text():
    sentence = F.normalize(torch.tensor([1.0, 0.0, 0.0]), dim=0)
    # cosines with the sentence: 0.0, 1.0, 0.6, -1.0, 0.8
    regions = torch.tensor(
        [[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-1.0, 0.0, 0.0], [0.8, 0.0, 0.6]]
    )
    similarity = region_sentence_similarity(regions, regions, sentence, clip_weight=0.5)
    torch.testing.assert_close(similarity, torch.tensor([0.0, 1.0, 0.6, -1.0, 0.8]))
    assert select_queries(similarity, 3).tolist() == [1, 4, 2]
    assert select_queries(similarity, 10).tolist() == [1, 4, 2, 0, 3]  # fewer than asked: all


def test_query_selection_blends_detector_and_clip_cosines():
    sentence = torch.tensor([1.0, 0.0])
    detector = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # the detector prefers region 0
    clip = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # CLIP prefers region 1
    assert select_queries(region_sentence_similarity(detector, clip, sentence, 0.2), 1) == 0
    assert select_queries(region_sentence_similarity(detector, clip, sentence, 0.8), 1) == 1


def test_query_selection_nms_skips_near_duplicates():
    similarity = torch.tensor([0.9, 0.8, 0.7])
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.5, 0, 10.5, 10], [20, 20, 30, 30]])
    assert select_queries(similarity, 2, boxes, nms_threshold=0.7).tolist() == [0, 2]
    assert select_queries(similarity, 2).tolist() == [0, 1]
    with pytest.raises(ValueError, match="num_queries"):
        select_queries(similarity, 0)


def test_padding_an_expression_does_not_change_the_output():
    torch.manual_seed(0)
    attention = LanguageGuidedAttention(dim=16, token_dim=8, num_heads=2, num_layers=2).eval()
    queries = torch.randn(1, 5, 16)
    tokens = torch.randn(1, 4, 8)
    short = attention(queries, tokens, torch.ones(1, 4, dtype=torch.bool))
    padded_tokens = torch.cat([tokens, 100 * torch.randn(1, 6, 8)], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 6])
    padded = attention(queries, padded_tokens, mask)
    torch.testing.assert_close(padded, short, atol=1e-5, rtol=1e-5)
    # the padding is really attended to when it is not masked
    unmasked = attention(queries, padded_tokens, torch.ones(1, 10, dtype=torch.bool))
    assert not torch.allclose(unmasked, short, atol=1e-3)


def test_padding_queries_do_not_change_the_real_ones():
    torch.manual_seed(0)
    attention = LanguageGuidedAttention(dim=16, token_dim=8, num_heads=2, num_layers=1).eval()
    queries, tokens = torch.randn(1, 3, 16), torch.randn(1, 4, 8)
    token_mask = torch.ones(1, 4, dtype=torch.bool)
    alone = attention(queries, tokens, token_mask)
    padded = torch.cat([queries, torch.randn(1, 2, 16)], dim=1)
    query_mask = torch.tensor([[True, True, True, False, False]])
    out = attention(padded, tokens, token_mask, query_mask=query_mask)
    torch.testing.assert_close(out[:, :3], alone, atol=1e-5, rtol=1e-5)


def test_box_geometry_is_relative_to_the_image():
    geometry = box_geometry(torch.tensor([[10.0, 20.0, 30.0, 60.0]]), (100, 200))
    torch.testing.assert_close(geometry[0, :6], torch.tensor([0.05, 0.2, 0.15, 0.6, 0.1, 0.4]))
    torch.testing.assert_close(geometry[0, 6], torch.tensor(0.04).log())


@pytest.mark.parametrize(
    ("sentence", "phrases"),
    [
        ("the small red star left of the ring", ["the small red star", "the ring"]),
        ("A cat and a dog, next to the sofa.", ["a cat", "a dog", "the sofa"]),
        ("the small white arrow on the right", ["the small white arrow"]),
        ("l-shape", ["l-shape"]),
        ("the", []),
        ("", []),
    ],
)
def test_noun_phrases(sentence, phrases):
    assert noun_phrases(sentence) == phrases


@pytest.mark.parametrize("use_detector", [True, False])
def test_query_encoder_reads_detector_embeddings_only_when_asked(use_detector):
    torch.manual_seed(0)
    encoder = QueryEncoder(embed_dim=8, dim=16, use_detector_embeddings=use_detector)
    clip, sentence = (
        F.normalize(torch.randn(2, 3, 8), dim=-1),
        F.normalize(torch.randn(2, 8), dim=-1),
    )
    geometry = torch.rand(2, 3, 7)
    a = encoder(F.normalize(torch.randn(2, 3, 8), dim=-1), clip, sentence, geometry)
    b = encoder(F.normalize(torch.randn(2, 3, 8), dim=-1), clip, sentence, geometry)
    assert torch.allclose(a, b) != use_detector
