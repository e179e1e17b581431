"""Configuration: ``get_cfg()`` returns every default; YAMLs and ``opts`` override them."""

from .config import CfgNode, ConfigError, configurable
from .loading import get_cfg, load_config

__all__ = ["CfgNode", "ConfigError", "configurable", "get_cfg", "load_config"]
