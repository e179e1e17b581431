"""Registries map names used in configs to classes; each family has one and a ``build_*(cfg)``.

fvcore's ``Registry`` is used as is. Registration happens by explicit imports in each package's
``__init__`` (never by scanning), so a registered name is always found once the package imports.
"""

from fvcore.common.registry import Registry

__all__ = ["Registry"]
