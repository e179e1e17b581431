"""The config object (fvcore's ``CfgNode``, clearer errors) and ``configurable``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from fvcore.common.config import CfgNode as _FvcoreCfgNode


class ConfigError(KeyError):
    """A YAML file or command-line override names a key that ovvision does not define."""

    def __str__(self) -> str:  # KeyError's str() wraps the message in quotes
        return str(self.args[0])


class CfgNode(_FvcoreCfgNode):
    """fvcore's CfgNode (detectron2's YAML with ``_BASE_``), read with safe loading only.

    Unknown keys raise :class:`ConfigError` naming the key and where it came from.
    """

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        """Merge a YAML file (and its ``_BASE_`` chain) into this config.

        Args:
            cfg_filename: path of the YAML file.
            allow_unsafe: must stay False; configs are data and are read with ``yaml.safe_load``.
        """
        if allow_unsafe:
            raise ValueError("ovvision reads configs with yaml.safe_load only (allow_unsafe=False)")
        loaded = self.load_yaml_with_base(cfg_filename, allow_unsafe=False)
        loaded = type(self)(loaded)
        _check_renamed(self._renamed_keys, _full_keys(loaded), f"config file '{cfg_filename}'")
        try:
            self.merge_from_other_cfg(loaded)
        except KeyError as e:
            raise ConfigError(f"{_key_message(e)} in config file '{cfg_filename}'") from None

    @property
    def _renamed_keys(self) -> dict[str, Any]:
        return self.__dict__[_FvcoreCfgNode.RENAMED_KEYS]

    def merge_from_list(self, cfg_list: list[str]) -> Callable[[], None]:
        """Merge ``[KEY, VALUE, KEY, VALUE, ...]`` pairs given on the command line."""
        if len(cfg_list) % 2 != 0:
            raise ConfigError(
                f"command-line overrides must be KEY VALUE pairs; got an odd number: {cfg_list}"
            )
        _check_renamed(
            self._renamed_keys, [str(k) for k in cfg_list[0::2]], "command-line overrides"
        )
        try:
            return super().merge_from_list(cfg_list)
        except (KeyError, AssertionError) as e:
            raise ConfigError(f"{_key_message(e)} in command-line overrides") from None


def _full_keys(node: dict, prefix: str = "") -> list[str]:
    """Every key of a nested config, nodes and leaves, as dotted full names."""
    keys = []
    for key, value in node.items():
        full = f"{prefix}{key}"
        keys.append(full)
        if isinstance(value, dict):
            keys += _full_keys(value, full + ".")
    return keys


def _check_renamed(renamed: dict[str, Any], keys: Sequence[str], where: str) -> None:
    """Raise :class:`ConfigError` naming the new key when ``keys`` use a renamed one.

    Args:
        renamed: ``{old full key: new key}``, registered on the defaults with yacs'
            ``register_renamed_key``.
        keys: full keys of a YAML file or of command-line overrides.
        where: where they come from, for the message.
    """
    # the most specific renamed key first (a leaf says more than its node)
    for key in sorted(keys, key=lambda k: -k.count(".")):
        if key in renamed:
            raise ConfigError(f"config key '{key}' was renamed to {renamed[key]}; update {where}")


def _key_message(error: Exception) -> str:
    msg = str(error.args[0]) if error.args else str(error)
    key = msg.split(":", 1)[1].strip() if ":" in msg else msg
    return f"unknown config key '{key}' (every key must be declared in ovvision/config/defaults.py)"


def configurable(init_func: Callable) -> Callable:
    """Let ``__init__`` be called with explicit keyword arguments or with a config.

    The class defines ``from_config(cls, cfg, ...)`` returning a dict of ``__init__`` arguments;
    then both ``Module(a=1, b=2)`` and ``Module(cfg)`` (plus overriding keywords) work, and
    ``from_config`` stays the only place that reads the config.
    """
    if init_func.__name__ != "__init__":
        raise TypeError("@configurable decorates __init__ methods only")

    @functools.wraps(init_func)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        from_config = getattr(type(self), "from_config", None)
        if from_config is None:
            raise AttributeError(f"{type(self).__name__} uses @configurable but has no from_config")
        if _called_with_cfg(*args, **kwargs):
            init_func(self, **_get_args_from_config(from_config, *args, **kwargs))
        else:
            init_func(self, *args, **kwargs)

    return wrapped


def _called_with_cfg(*args: Any, **kwargs: Any) -> bool:
    return bool(args and isinstance(args[0], _FvcoreCfgNode)) or isinstance(
        kwargs.get("cfg"), _FvcoreCfgNode
    )


def _get_args_from_config(from_config: Callable, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call ``from_config`` with the arguments it accepts; pass the others to ``__init__``."""
    params = inspect.signature(from_config).parameters
    if next(iter(params)) != "cfg":
        raise TypeError(f"{from_config.__qualname__} must take 'cfg' as its first argument")
    takes_var_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())
    if takes_var_kw:
        return from_config(*args, **kwargs)
    own = {k: kwargs.pop(k) for k in list(kwargs) if k in params}
    result = from_config(*args, **own)
    result.update(kwargs)
    return result
