"""Where a run's config comes from: the defaults, a YAML file, then command-line overrides."""

from __future__ import annotations

from collections.abc import Sequence

from .config import CfgNode
from .defaults import _C

__all__ = ["get_cfg", "load_config"]


def get_cfg() -> CfgNode:
    """A fresh copy of ovvision's default config; callers may change it freely."""
    return _C.clone()


def load_config(config_file: str = "", opts: Sequence[str] = ()) -> CfgNode:
    """Defaults, then a YAML file (with its ``_BASE_`` chain), then ``KEY VALUE`` overrides.

    The result is not frozen, so callers may still adjust it.
    """
    cfg = get_cfg()
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    return cfg
