"""Caption grounding (CGG): the loss by hand, empty images and captions, two gloo processes
(the gathered loss, and a whole CGG model under DDP)."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
import torch.nn.functional as F

from ovvision.engine import create_ddp_model, launch
from ovvision.modeling import build_model
from ovvision.modeling.losses import RegionLossInputs
from ovvision.modeling.losses.caption_grounding import (
    CaptionGroundingLoss,
    NounEmbeddings,
    caption_contrastive_loss,
    grounding_scores,
)
from ovvision.modeling.text import NameEmbedder, create_text_encoder
from ovvision.modeling.text.caption_nouns import CaptionNouns, NounExtractor
from ovvision.structures import ClassEmbeddings, ClassList, ImageList, Vocabulary
from ovvision.utils import comm

from ..helpers import TINY_CLIP, make_item, tiny_config

GROUNDING = ("MODEL.ROI_HEADS.AUXILIARY_LOSSES", '["CaptionGroundingLoss"]')
CGG = (
    "MODEL.ROI_HEADS.AUXILIARY_LOSSES", '["CaptionGroundingLoss", "CaptionGenerationLoss"]',
    "MODEL.CAPTION_GROUNDING.REGIONS_PER_IMAGE", "4",
    "MODEL.CAPTION_GENERATION.REGIONS_PER_IMAGE", "4",
    "MODEL.CAPTION_GENERATION.HIDDEN_DIM", "32",
    "MODEL.CAPTION_GENERATION.NUM_LAYERS", "1",
    "MODEL.CAPTION_GENERATION.NUM_HEADS", "2",
    "MODEL.CAPTION_GENERATION.MAX_LENGTH", "12",
)  # fmt: skip


def _unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _softmax(xs: list[float]) -> list[float]:
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


def _pair_score(regions: list[list[float]], nouns: list[list[float]], t: float) -> float:
    s = [[_dot(r, n) for n in nouns] for r in regions]
    noun_terms = []
    for m in range(len(nouns)):
        column = [s[k][m] for k in range(len(regions))]
        noun_terms.append(sum(a * x for a, x in zip(_softmax([x / t for x in column]), column)))
    region_terms = [sum(a * x for a, x in zip(_softmax([x / t for x in row]), row)) for row in s]
    return 0.5 * (sum(noun_terms) / len(nouns) + sum(region_terms) / len(regions))


def test_the_loss_equals_a_hand_computation():
    regions = [[_unit(1, 0), _unit(1, 2)], [_unit(-1, 1)]]  # image 0: 2 regions, image 1: 1
    nouns = [[_unit(2, 1)], [_unit(0, 1), _unit(-3, 1)]]  # caption 0: 1 noun, caption 1: 2
    t, tc = 0.5, 0.2
    scores = [[_pair_score(regions[i], nouns[j], t) for j in range(2)] for i in range(2)]
    by_image = [-math.log(_softmax([x / tc for x in scores[i]])[i]) for i in range(2)]
    columns = [[scores[i][j] for i in range(2)] for j in range(2)]
    by_caption = [-math.log(_softmax([x / tc for x in columns[j]])[j]) for j in range(2)]
    expected = 0.5 * (sum(by_image) / 2 + sum(by_caption) / 2)

    r = torch.tensor([regions[0], [regions[1][0], [0.0, 0.0]]])
    n = torch.tensor([[nouns[0][0], [0.0, 0.0]], nouns[1]])
    rmask = torch.tensor([[True, True], [True, False]])
    nmask = torch.tensor([[True, False], [True, True]])
    got = grounding_scores(r, rmask, n, nmask, t)
    assert torch.allclose(got, torch.tensor(scores), atol=1e-6)
    loss = caption_contrastive_loss(got, torch.tensor([True, True]), tc)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_no_region_and_no_noun_give_finite_values_and_gradients():
    r = torch.randn(3, 4, 8).requires_grad_()
    n = F.normalize(torch.randn(3, 2, 8), dim=-1)
    rmask = torch.tensor([[True] * 4, [False] * 4, [True, True, False, False]])  # image 1: none
    nmask = torch.tensor([[True, True], [True, False], [False, False]])  # caption 2: no noun
    scores = grounding_scores(F.normalize(r, dim=-1), rmask, n, nmask, 0.1)
    assert scores[1].eq(0).all() and scores[:, 2].eq(0).all()
    valid = rmask.any(1) & nmask.any(1)
    loss = caption_contrastive_loss(scores, valid, 0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(r.grad).all()
    assert loss.item() == 0.0  # a single valid pair: log(1)
    none = caption_contrastive_loss(scores, torch.zeros(3, dtype=torch.bool), 0.1)
    assert none.item() == 0.0 and none.requires_grad


# --- the loss module on hand-made inputs (one process, then two gloo processes) ----------------
CLASSES = ClassList(["circle", "square", "star"])
TABLE = torch.tensor([_unit(1, 0, 0, 1), _unit(0, 1, 1, 0), _unit(1, 1, -1, 0)])
CAPTIONS = [["a circle and a star"], ["two squares"], [], ["three stars and a square"],
            ["nothing at all"], ["a square"]]  # fmt: skip
# image 1 has no proposal, image 2 no caption, image 4 no noun; 0, 3 and 5 make the pairs
REGION_COUNTS = [3, 0, 2, 2, 1, 2]
_GENERATOR = torch.Generator().manual_seed(3)
EMBEDDINGS = F.normalize(torch.randn(sum(REGION_COUNTS), 4, generator=_GENERATOR), dim=-1)


def _table_embeddings(nouns: CaptionNouns, device: torch.device) -> torch.Tensor:
    return TABLE[list(nouns.classes)].to(device)


def _loss_module() -> CaptionGroundingLoss:
    return CaptionGroundingLoss(
        nouns=NounExtractor(CLASSES), noun_embeddings=_table_embeddings,
        temperature=0.5, contrastive_temperature=0.2,
    )  # fmt: skip


def _inputs(embeddings: torch.Tensor, images: range) -> RegionLossInputs:
    boxes = [torch.zeros(REGION_COUNTS[i], 4) for i in images]
    empty = torch.zeros(0)
    return RegionLossInputs(
        region_embeddings=empty, labels=empty, objectness=empty, ious=empty, roi_features=empty,
        classes=ClassEmbeddings(TABLE, torch.ones(3, dtype=torch.bool)),
        extra_embeddings=embeddings, extra_boxes=boxes,
        images=ImageList(torch.zeros(len(images), 3, 8, 8), [(8, 8)] * len(images)),
        features={}, captions=[CAPTIONS[i] for i in images],
    )  # fmt: skip


def _rows(images: range) -> slice:
    start = sum(REGION_COUNTS[: images.start])
    return slice(start, start + sum(REGION_COUNTS[images.start : images.stop]))


def _gloo_worker(output_dir: str) -> None:
    rank = comm.get_rank()
    images = range(3 * rank, 3 * rank + 3)
    embeddings = EMBEDDINGS[_rows(images)].clone().requires_grad_()
    loss = _loss_module()(_inputs(embeddings, images))["loss_caption_grounding"]
    loss.backward()
    result = {"loss": loss.item(), "grad": embeddings.grad.tolist()}
    result.update(_ddp_cgg_steps(rank))
    gathered = comm.all_gather(result)
    if comm.is_main_process():
        with open(os.path.join(output_dir, "gloo.json"), "w") as f:
            json.dump(gathered, f)


def _ddp_cgg_steps(rank: int) -> dict[str, float]:
    """Two DDP steps of a model with both CGG losses; rank 1 has no caption at all."""
    torch.manual_seed(0)
    cfg = tiny_config(*CGG)
    model = create_ddp_model(build_model(cfg), broadcast_buffers=False)  # no unused parameters
    if rank == 0:
        batch = [dict(make_item(boxes=[[4, 6, 40, 30]], classes=[1]), captions=["a square"]),
                 dict(make_item(seed=3), captions=["a circle and a star"])]  # fmt: skip
    else:
        batch = [make_item(seed=5)]
    model.train()
    for _ in range(2):
        model.zero_grad()
        losses = model(batch)
        sum(losses.values()).backward()
    decoder = model.module.roi_heads.auxiliary_losses[1].decoder
    return {
        "grounding": losses["loss_caption_grounding"].item(),
        "generation": losses["loss_caption_generation"].item(),
        "decoder_grad": float(sum(p.grad.abs().sum() for p in decoder.parameters())),
    }


@pytest.mark.slow  # two spawned processes import ovvision: ~30 s on 2 shared cores
def test_two_gloo_processes_equal_one_process_holding_the_whole_batch(tmp_path):
    embeddings = EMBEDDINGS.clone().requires_grad_()
    loss = _loss_module()(_inputs(embeddings, range(6)))["loss_caption_grounding"]
    loss.backward()
    assert loss.item() > 0
    launch(_gloo_worker, num_gpus_per_machine=2, args=(str(tmp_path),), backend="gloo")
    ranks = json.loads((tmp_path / "gloo.json").read_text())
    for rank, result in enumerate(ranks):
        # every rank's loss sees every rank's captions: the whole batch's loss
        assert result["loss"] == pytest.approx(loss.item(), abs=1e-6)
        # the gather's backward sums the 2 ranks' gradients; DDP then averages them, which
        # gives each rank's rows exactly the one-process gradient
        grad = torch.tensor(result["grad"]).reshape(-1, 4) / 2
        expected = embeddings.grad[_rows(range(3 * rank, 3 * rank + 3))]
        assert torch.allclose(grad, expected, atol=1e-6)
        assert expected.abs().sum() > 0  # each rank holds a pair
    # a whole model under DDP: rank 1 has no caption, yet no parameter is left without gradient
    # (DDP would raise), its grounding loss is the gathered batch's, its generation loss zero
    assert ranks[0]["grounding"] > 0
    assert ranks[1]["grounding"] == pytest.approx(ranks[0]["grounding"])
    assert ranks[0]["generation"] > 0 and ranks[1]["generation"] == 0.0
    assert ranks[0]["decoder_grad"] > 0
    assert ranks[1]["decoder_grad"] == pytest.approx(ranks[0]["decoder_grad"])


def test_images_without_captions_give_an_exact_zero_that_reaches_every_parameter():
    torch.manual_seed(0)
    model = build_model(tiny_config(*GROUNDING, "MODEL.CAPTION_GROUNDING.REGIONS_PER_IMAGE", "4"))
    model.train()
    no_caption = [make_item(boxes=[[4, 6, 40, 30]], classes=[1]), make_item(seed=2)]
    losses = model(no_caption)
    assert losses["loss_caption_grounding"].item() == 0.0
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    captioned = [dict(item, captions=[text]) for item, text in
                 zip(no_caption, ["a square", "a circle and a star"])]  # fmt: skip
    loss = model(captioned)["loss_caption_grounding"]
    assert torch.isfinite(loss) and loss.item() > 0
    model.zero_grad(set_to_none=True)
    loss.backward()
    assert model.roi_heads.classifier.embed.weight.grad.abs().sum() > 0


def test_noun_embeddings_use_the_class_encoder_and_templates_and_are_cached():
    torch.manual_seed(0)
    encoder = create_text_encoder(TINY_CLIP)
    classes = ClassList(["circle", "sofa"], [[], ["couch"]])
    templates = ["a photo of a {}.", "a {}"]
    embed = NounEmbeddings(NameEmbedder(templates, encoder=encoder), classes)
    got = embed(CaptionNouns((1, 0), ("dog",)), torch.device("cpu"))
    vocabulary = Vocabulary.from_classes(
        ClassList(["sofa", "circle", "dog"], [["couch"], [], []]), encoder, templates=templates,
        use_cache=False,
    )  # fmt: skip
    assert torch.allclose(got, vocabulary.embeddings, atol=1e-5)
    assert set(embed._cache) == {0, 1, "dog"}
    again = embed(CaptionNouns((1,)), torch.device("cpu"))
    assert torch.equal(again[0], got[0])
