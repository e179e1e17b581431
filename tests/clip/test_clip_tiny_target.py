"""The shipped tiny-CLIP config reaches the zero-shot target on OV-Shapes (slow: trains minutes).

The training itself is the session fixture ``trained_tiny_clip`` (tests/conftest.py), which the
detector's open-vocabulary test reuses.
"""

from __future__ import annotations

import pytest

TARGET_TOP1 = 0.85


@pytest.mark.slow
def test_clip_tiny_reaches_zero_shot_target(trained_tiny_clip) -> None:
    results = trained_tiny_clip.zero_shot
    summary = {k: round(results[k], 4) for k in ("top1_all", "top1_base", "top1_novel")}
    minutes = trained_tiny_clip.minutes
    print(f"tiny CLIP: {summary} after {minutes:.1f} min of training (wall clock, incl. start-up)")
    assert results["dataset"] == "ov_shapes_pretrain_val"
    assert results["num_crops"] > 1000
    assert results["top1_base"] >= TARGET_TOP1, summary
    assert results["top1_novel"] >= TARGET_TOP1, summary
