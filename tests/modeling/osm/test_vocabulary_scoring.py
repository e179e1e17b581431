"""Vocabulary ranking by name probability, name matching, and decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ovvision.modeling.osm import (
    NameMatcher,
    VocabularyScorer,
    beam_search,
    greedy_decode,
    load_causal_lm,
    name_log_probs,
)
from ovvision.structures import ClassList


@pytest.fixture(scope="module")
def lm(tiny_lm_dir: Path):
    return load_causal_lm(tiny_lm_dir).eval()


def _prefix(lm, n: int = 3, length: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, length, lm.embed_dim, generator=torch.Generator().manual_seed(seed))


def test_two_token_name_score_is_the_product_of_its_token_probabilities(lm):
    prefix = _prefix(lm, n=2)
    name = lm.encode("red circle")
    assert len(name) == 2
    with torch.no_grad():
        scored = name_log_probs(lm, prefix, [name], end_token=False)[:, 0]
        with_end = name_log_probs(lm, prefix, [name], end_token=True)[:, 0]
        for i in range(2):
            p1 = lm.logits(prefix[i : i + 1])[0, -1].softmax(-1)[name[0]]
            step = torch.cat([prefix[i : i + 1], lm.embed(torch.tensor([[name[0]]]))], dim=1)
            p2 = lm.logits(step)[0, -1].softmax(-1)[name[1]]
            step = torch.cat([step, lm.embed(torch.tensor([[name[1]]]))], dim=1)
            p_end = lm.logits(step)[0, -1].softmax(-1)[lm.eos_id]
            torch.testing.assert_close(scored[i].exp(), p1 * p2, rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(with_end[i].exp(), p1 * p2 * p_end, rtol=1e-4, atol=1e-7)


def test_class_score_is_the_best_of_its_names_synonyms_and_plurals(lm):
    classes = ClassList(["cup", "circle"], synonyms=[["mug"], []])
    scorer = VocabularyScorer(lm, classes)
    prefix = _prefix(lm)
    with torch.no_grad():
        scores = scorer(lm, prefix)
        names = [lm.encode(t) for t in ("cup", "mug", "cups", "mugs", "circle", "circles")]
        per_name = name_log_probs(lm, prefix, names)
    torch.testing.assert_close(scores[:, 0], per_name[:, :4].max(dim=1).values)
    torch.testing.assert_close(scores[:, 1], per_name[:, 4:].max(dim=1).values)


def test_synonyms_and_plural_forms_name_the_same_class():
    matcher = NameMatcher(ClassList(["cup", "l-shape", "ring"], synonyms=[["mug"], [], []]))
    assert matcher("cup") == matcher("Mugs") == matcher("cups") == 0
    assert matcher("l - shape") == matcher("L-shapes") == 1
    assert matcher("rings") == 2
    assert matcher("star") is None and matcher("") is None


def test_shared_name_between_classes_is_refused():
    with pytest.raises(ValueError, match="share the name"):
        NameMatcher(ClassList(["cup", "mug"], synonyms=[["mug"], []]))


def test_beam_one_equals_greedy_and_respects_the_length_limit(lm):
    prefix = _prefix(lm, n=4, seed=3)
    for limit in (1, 3, 6):
        greedy = greedy_decode(lm, prefix, limit)
        assert beam_search(lm, prefix, limit, beam_size=1) == greedy
        assert all(len(t) <= limit for t in greedy)
        assert all(len(t) <= limit for t in beam_search(lm, prefix, limit, beam_size=3))
    assert greedy_decode(lm, prefix, 0) == [[]] * 4 == beam_search(lm, prefix, 0, 2)
