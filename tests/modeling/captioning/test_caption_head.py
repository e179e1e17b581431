"""Caption generation (CGG): teacher forcing overfits, decoding stops, describe never fails."""

from __future__ import annotations

import pytest
import torch

from ovvision.modeling import build_model
from ovvision.modeling.captioning import (
    CaptionDecoder,
    CaptionTokenizer,
    beam_search,
    greedy_decode,
)

from ..helpers import TINY_CLIP, make_item, tiny_config

CAPTIONS = ["a red circle above a blue star", "two squares"]
GENERATION = (
    "MODEL.ROI_HEADS.AUXILIARY_LOSSES", '["CaptionGenerationLoss"]',
    "MODEL.CAPTION_GENERATION.HIDDEN_DIM", "32",
    "MODEL.CAPTION_GENERATION.NUM_LAYERS", "1",
    "MODEL.CAPTION_GENERATION.NUM_HEADS", "2",
    "MODEL.CAPTION_GENERATION.REGIONS_PER_IMAGE", "4",
    "MODEL.CAPTION_GENERATION.MAX_LENGTH", "12",
)  # fmt: skip


@pytest.fixture(scope="module")
def overfitted() -> tuple[CaptionDecoder, CaptionTokenizer, torch.Tensor, torch.Tensor, list]:
    """A decoder trained to write CAPTIONS[i] from region set i (two regions vs one)."""
    torch.manual_seed(0)
    tokenizer = CaptionTokenizer.from_name(TINY_CLIP, max_length=12)
    decoder = CaptionDecoder(
        vocab_size=tokenizer.vocab_size, memory_dim=8, hidden_dim=32, num_layers=1,
        num_heads=2, dropout=0.0, max_length=12,
    )  # fmt: skip
    regions = torch.randn(2, 2, 8)
    mask = torch.tensor([[True, True], [True, False]])
    tokens = tokenizer.encode(CAPTIONS)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = decoder.teacher_forced_loss(regions, mask, tokens, tokenizer.end)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    decoder.eval()
    return decoder, tokenizer, regions, mask, losses


def test_teacher_forced_loss_overfits_two_captions(overfitted):
    decoder, tokenizer, regions, mask, losses = overfitted
    assert losses[-1] < 0.05 * losses[0]
    tokens = greedy_decode(decoder, regions, mask, tokenizer.start, tokenizer.end, 12)
    assert [tokenizer.decode(t) for t in tokens] == CAPTIONS


def test_padding_after_the_end_token_is_not_a_target(overfitted):
    decoder, tokenizer, regions, mask, _ = overfitted
    tokens = tokenizer.encode(CAPTIONS)
    other_padding = tokens.clone()
    other_padding[1, 5:] = 7  # "two squares" ends at position 4; what follows is padding
    a = decoder.teacher_forced_loss(regions, mask, tokens, tokenizer.end)
    b = decoder.teacher_forced_loss(regions, mask, other_padding, tokenizer.end)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


@pytest.mark.parametrize("beam", [1, 3])
def test_decoding_stops_at_the_end_token_and_at_the_length_limit(overfitted, beam):
    decoder, tokenizer, regions, mask, _ = overfitted
    ids = (tokenizer.start, tokenizer.end)

    def decode(limit: int) -> list[list[int]]:
        if beam == 1:
            return greedy_decode(decoder, regions, mask, *ids, limit)
        return beam_search(decoder, regions, mask, *ids, limit, beam)

    for tokens, text in zip(decode(12), CAPTIONS):
        assert tokens[0] == tokenizer.start and tokens[-1] == tokenizer.end
        assert tokens.count(tokenizer.end) == 1 and tokenizer.decode(tokens) == text
    cut, short = decode(4)
    assert len(cut) == 4 and tokenizer.end not in cut  # cut at the limit
    assert tokenizer.decode(cut) == "a red circle"
    assert len(short) == 4 and short[-1] == tokenizer.end  # "two squares" just fits


def test_captions_longer_than_the_limit_are_cut_and_still_end():
    tokenizer = CaptionTokenizer.from_name(TINY_CLIP, max_length=5)
    tokens = tokenizer.encode(["one two three four five six", ""])
    assert tokens.shape == (2, 5) and tokens[0, -1] == tokenizer.end
    assert tokens[1, :2].tolist() == [tokenizer.start, tokenizer.end]
    assert tokenizer.decode(tokens[0].tolist()) == "one two three"
    with pytest.raises(ValueError, match="MAX_LENGTH"):
        CaptionTokenizer.from_name(TINY_CLIP, max_length=2)


def test_the_loss_is_an_exact_zero_without_captions_and_describe_always_answers():
    torch.manual_seed(0)
    model = build_model(tiny_config(*GENERATION, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "1.01"))
    model.train()
    batch = [make_item(boxes=[[4, 6, 40, 30]], classes=[1]), make_item(seed=2)]
    losses = model(batch)
    assert losses["loss_caption_generation"].item() == 0.0
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    captioned = [dict(batch[0], captions=["a square"]), batch[1]]
    assert model(captioned)["loss_caption_generation"].item() > 0
    model.eval()
    assert len(model([make_item(seed=3)])[0]["instances"]) == 0  # no detection
    for beam in (1, 2):
        captions = model.describe([make_item(seed=3), make_item(seed=4, height=48)], beam)
        assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
    writer = model.roi_heads.auxiliary_losses[0]
    assert isinstance(writer.generate([torch.zeros(0, 128)])[0], str)  # no region at all


def test_describe_without_a_caption_generator_names_the_key():
    model = build_model(tiny_config()).eval()
    with pytest.raises(ValueError, match="CaptionGenerationLoss"):
        model.describe([make_item()])
