"""A config that still uses a renamed key gets an error naming the new key and the source."""

from __future__ import annotations

import pytest

from ovvision.config import ConfigError, get_cfg


def test_a_renamed_key_in_a_yaml_names_its_new_key_and_the_file(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("MODEL:\n  REGION_CLIP:\n    SOURCE: crops\n    FUSION: True\n")
    with pytest.raises(ConfigError) as error:
        get_cfg().merge_from_file(str(old))
    message = str(error.value)
    # a leaf says more than its node: the first leaf found is named with its new key
    assert "'MODEL.REGION_CLIP." in message and "MODEL.CLIP_" in message
    assert str(old) in message
    whole_node = tmp_path / "node.yaml"
    whole_node.write_text("MODEL:\n  CLIP_REGION_HEAD: {}\n")
    with pytest.raises(
        ConfigError, match="'MODEL.CLIP_REGION_HEAD' was renamed to MODEL.ZERO_SHOT"
    ):
        get_cfg().merge_from_file(str(whole_node))


def test_a_renamed_key_on_the_command_line_names_its_new_key():
    cfg = get_cfg()
    with pytest.raises(ConfigError, match="MAX_CROPS_PER_IMAGE' was renamed to MODEL.CLIP_SCORE"):
        cfg.merge_from_list(["MODEL.REGION_CLIP.MAX_CROPS_PER_IMAGE", "3"])
    with pytest.raises(ConfigError, match="ViLDDistillationLoss"):
        cfg.merge_from_list(["MODEL.CLIP_REGION_HEAD.DISTILL_WEIGHT", "0.5"])
    cfg.merge_from_list(["MODEL.CLIP_SCORE_FUSION.MAX_REGIONS_PER_IMAGE", "3"])
    assert cfg.MODEL.CLIP_SCORE_FUSION.MAX_REGIONS_PER_IMAGE == 3
