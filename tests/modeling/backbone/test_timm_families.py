"""timm backbones by name: one model of each family builds with the default settings, runs
forward and trains one step (random weights, CPU); freezing counts stages by ``feature_info``."""

from __future__ import annotations

import pytest
import torch

from ovvision.config import get_cfg
from ovvision.modeling import build_backbone, build_model
from ovvision.modeling.backbone.timm_fpn import create_timm_features, freeze_timm_stages

from ..helpers import make_item, tiny_config

OUT_CHANNELS = 64  # narrower than the default 256 to keep the test fast; not a timm setting

# timm name, FREEZE_AT, parameter-name prefixes that must be frozen (all others trainable), and
# the first stage after them. Names are those of timm's features_only model ("stages.0" is
# flattened to "stages_0"; a ViT sits under "model.").
FAMILIES = [
    ("resnet18", 2, ("conv1.", "layer1."), "layer2."),
    ("convnext_atto", 2, ("stem_0.", "stem_1.", "stages_0."), "stages_1."),
    ("efficientnet_b0", 2, ("conv_stem.", "blocks.0.", "blocks.1."), "blocks.2."),
    ("regnetx_002", 2, ("stem.", "s1."), "s2."),
    ("swin_tiny_patch4_window7_224", 2, ("patch_embed.", "layers_0."), "layers_1."),
    (
        "vit_tiny_patch16_224",
        2,
        ("model.cls_token", "model.pos_embed", "model.patch_embed.", "model.blocks.0."),
        "model.blocks.1.",
    ),
]


def _timm_cfg(name: str, *overrides: str):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.TIMM.NAME", name, "MODEL.FPN.OUT_CHANNELS", str(OUT_CHANNELS)])
    cfg.merge_from_list(list(overrides))
    return cfg


def _assert_frozen_exactly(body: torch.nn.Module, frozen: tuple[str, ...], first: str) -> None:
    params = dict(body.named_parameters())
    wrong = [n for n, p in params.items() if p.requires_grad == n.startswith(frozen)]
    assert not wrong, f"requires_grad is wrong for {wrong[:5]}"
    assert any(n.startswith(frozen) for n in params), "nothing frozen"
    assert any(n.startswith(first) and p.requires_grad for n, p in params.items())


@pytest.mark.parametrize("name, freeze_at, frozen, first_trainable", FAMILIES)
def test_timm_family_builds_runs_and_trains_with_defaults(name, freeze_at, frozen, first_trainable):
    torch.manual_seed(0)
    backbone = build_backbone(_timm_cfg(name, "MODEL.BACKBONE.FREEZE_AT", str(freeze_at)))
    # Default OUT_INDICES: stride 4..32 levels from feature_info, plus the max-pooled top level.
    assert backbone.output_names == ["p2", "p3", "p4", "p5", "p6"]
    assert backbone.strides == {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}
    assert backbone.out_channels == OUT_CHANNELS
    assert backbone.size_divisibility == 64
    _assert_frozen_exactly(backbone.body, frozen, first_trainable)

    images = torch.randn(2, 3, 64, 128)  # not the 224 Swin and ViT were defined for
    backbone.train()
    out = backbone(images)
    assert list(out) == backbone.output_names
    for level, stride in backbone.strides.items():
        assert out[level].shape == (2, OUT_CHANNELS, 64 // stride, 128 // stride), level
        assert torch.isfinite(out[level]).all(), level

    trainable = [p for p in backbone.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    before = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    sum(o.square().mean() for o in out.values()).backward()
    optimizer.step()
    changed = {n for n, p in backbone.named_parameters() if not torch.equal(before[n], p)}
    assert any(n.startswith("body." + first_trainable) for n in changed)
    assert any(n.startswith(("fpn.", "simple_pyramid.")) for n in changed)
    assert not any(n.startswith(tuple("body." + f for f in frozen)) for n in changed)


@pytest.mark.parametrize(
    "name, freeze_at, frozen, first_trainable",
    [
        # No stride-2 level in feature_info: FREEZE_AT=1 is what precedes the first stage.
        ("convnext_atto", 1, ("stem_0.", "stem_1."), "stages_0."),
        ("vit_tiny_patch16_224", 1, ("model.cls_token", "model.pos_embed", "model.patch_embed."),
         "model.blocks.0."),
        # feature_info lists blocks.2 (stride 8) and blocks.4 (stride 16): blocks.3 belongs to
        # the stride-16 stage, which FREEZE_AT=3 (stem + 2 stages) leaves trainable.
        ("efficientnet_b0", 3, ("conv_stem.", "bn1.", "blocks.0.", "blocks.1.", "blocks.2."),
         "blocks.3."),
        ("resnet18", 5, ("conv1.", "layer1.", "layer2.", "layer3.", "layer4."), "nothing"),
    ],
)  # fmt: skip
def test_freeze_at_counts_feature_info_stages(name, freeze_at, frozen, first_trainable):
    body = create_timm_features(name, "", ())
    freeze_timm_stages(body, freeze_at)
    if first_trainable == "nothing":
        assert not any(p.requires_grad for p in body.parameters())
    else:
        _assert_frozen_exactly(body, frozen, first_trainable)


def test_out_indices_explicit_and_wrong():
    backbone = build_backbone(
        _timm_cfg(
            "convnext_atto", "MODEL.TIMM.OUT_INDICES", "[1, 2]", "MODEL.FPN.TOP_BLOCK", "False"
        )
    )
    assert backbone.strides == {"p3": 8, "p4": 16}
    out = backbone(torch.randn(1, 3, 32, 64))
    assert [tuple(o.shape) for o in out.values()] == [(1, OUT_CHANNELS, 4, 8), (1, 64, 2, 4)]
    # The old default [1, 2, 3, 4] does not fit a model whose feature_info has 4 levels.
    with pytest.raises(ValueError, match=r"MODEL.TIMM.OUT_INDICES=\[1, 2, 3, 4\].* 0\.\.3 "):
        build_backbone(_timm_cfg("convnext_atto", "MODEL.TIMM.OUT_INDICES", "[1, 2, 3, 4]"))
    with pytest.raises(ValueError, match=r"OUT_INDICES=\[9, 10, 11\] selects strides \[16, 16"):
        build_backbone(_timm_cfg("vit_tiny_patch16_224", "MODEL.TIMM.OUT_INDICES", "[9, 10, 11]"))
    with pytest.raises(ValueError, match=r"MODEL.BACKBONE.FREEZE_AT=6 .* 1 \(stem\) \.\. 5"):
        build_backbone(_timm_cfg("convnext_atto", "MODEL.BACKBONE.FREEZE_AT", "6"))
    with pytest.raises(ValueError, match=r"MODEL.TIMM.PYRAMID_SCALES=\[3.0\]"):
        build_backbone(_timm_cfg("vit_tiny_patch16_224", "MODEL.TIMM.PYRAMID_SCALES", "[3.0]"))


def test_ovrcnn_trains_one_step_on_a_convnext_backbone():
    torch.manual_seed(0)
    cfg = tiny_config(
        "MODEL.TIMM.NAME", "convnext_atto",
        "MODEL.TIMM.OUT_INDICES", "[]",
        "MODEL.BACKBONE.FREEZE_AT", "2",
        "MODEL.ANCHOR_GENERATOR.SIZES", "[[16], [32], [64], [128]]",
    )  # fmt: skip
    model = build_model(cfg)
    assert model.backbone.output_names == ["p2", "p3", "p4", "p5"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-2)
    model.train()
    losses = model([make_item(boxes=[[6, 6, 46, 38]], classes=[1], seed=1), make_item(seed=2)])
    assert {"loss_rpn_cls", "loss_cls", "loss_box_reg"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    body = model.backbone.body
    before = {n: p.detach().clone() for n, p in body.named_parameters()}
    sum(losses.values()).backward()
    optimizer.step()
    changed = {n for n, p in body.named_parameters() if not torch.equal(before[n], p)}
    assert any(n.startswith("stages_1.") for n in changed)
    assert not any(n.startswith(("stem_", "stages_0.")) for n in changed)
