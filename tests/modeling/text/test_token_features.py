"""encode_expressions: token features, padding mask, sentence embeddings, length checks."""

from __future__ import annotations

import pytest
import torch

from ovvision.modeling.text import ExpressionTooLongError, create_text_encoder, encode_expressions


@pytest.mark.parametrize("name", ["OVShapes-CLIP-Tiny", "OVShapes-CLIP-RN-Tiny"])
def test_sentence_embedding_is_clips_and_mask_marks_real_tokens(name):
    torch.manual_seed(0)
    encoder = create_text_encoder(name)
    texts = ["the small red star", "ring"]
    features = encode_expressions(encoder, texts)
    length = encoder.context_length
    assert features.tokens.shape[:2] == (2, length) and features.mask.shape == (2, length)
    # start + words + end tokens are real, the rest is padding
    assert features.mask.sum(dim=1).tolist() == [encoder.num_tokens(t) for t in texts]
    torch.testing.assert_close(features.sentence, encoder.encode_text(texts))
    assert features.truncated == []


def test_over_long_and_empty_expressions():
    encoder = create_text_encoder("OVShapes-CLIP-Tiny")
    long_text = " ".join(["red"] * 40)
    with pytest.raises(ExpressionTooLongError, match=r"expression 1 .* context length 16"):
        encode_expressions(encoder, ["a star", long_text])
    features = encode_expressions(encoder, ["a star", long_text], truncate=True)
    assert features.truncated == [1] and bool(features.mask[1].all())
    for empty in ("", "   "):
        with pytest.raises(ValueError, match="expression 0 is empty"):
            encode_expressions(encoder, [empty])
