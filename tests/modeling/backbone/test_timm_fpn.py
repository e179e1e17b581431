"""timm feature extractors under the FPN backbone."""

from __future__ import annotations

import pytest

from ovvision.modeling.backbone.timm_fpn import create_timm_features, freeze_timm_stages


def test_timm_freeze_at_counts_feature_levels():
    body = create_timm_features("resnet18", "", (1, 2, 3, 4))
    freeze_timm_stages(body, 2)
    frozen = {n.split(".")[0] for n, p in body.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "bn1", "layer1"}
    with pytest.raises(ValueError, match="FREEZE_AT=9"):
        freeze_timm_stages(body, 9)
    with pytest.raises(ValueError, match="not a timm model"):
        create_timm_features("no_such_net", "", (1,))
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        create_timm_features("resnet18", "/nowhere/missing.safetensors", (1,))
