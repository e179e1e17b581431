"""Config: _BASE_ chains, command-line overrides, unknown keys, safe loading, configurable."""

from __future__ import annotations

import pytest

from ovvision.config import ConfigError, configurable, get_cfg, load_config


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_base_chain_and_overrides(tmp_path):
    _write(tmp_path / "Base.yaml", "SOLVER:\n  BASE_LR: 0.1\n  MAX_ITER: 100\nSEED: 1\n")
    _write(tmp_path / "Mid.yaml", "_BASE_: Base.yaml\nSOLVER:\n  MAX_ITER: 200\n")
    leaf = _write(tmp_path / "leaf.yaml", "_BASE_: Mid.yaml\nSEED: 3\n")
    cfg = get_cfg()
    cfg.merge_from_file(leaf)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER, cfg.SEED) == (0.1, 200, 3)
    cfg.merge_from_list(["SOLVER.MAX_ITER", "7", "SOLVER.STEPS", "(3, 5)", "OUTPUT_DIR", "out/x"])
    assert cfg.SOLVER.MAX_ITER == 7 and tuple(cfg.SOLVER.STEPS) == (3, 5)
    assert cfg.OUTPUT_DIR == "out/x"
    assert get_cfg().SOLVER.MAX_ITER != 7  # get_cfg returns a fresh copy
    loaded = load_config(leaf, ["SEED", "5"])  # what every tool does with its arguments
    assert (loaded.SOLVER.MAX_ITER, loaded.SEED) == (200, 5) and not loaded.is_frozen()


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError) as info:
        get_cfg().merge_from_file(bad)
    assert "SOLVER.BASE_LRR" in str(info.value) and "bad.yaml" in str(info.value)


def test_unknown_key_in_base_file_names_the_leaf(tmp_path):
    _write(tmp_path / "Base.yaml", "MODEL:\n  NOPE: 1\n")
    leaf = _write(tmp_path / "leaf.yaml", "_BASE_: Base.yaml\n")
    with pytest.raises(ConfigError, match=r"MODEL\.NOPE.*leaf\.yaml"):
        get_cfg().merge_from_file(leaf)


def test_unknown_or_unpaired_command_line_keys():
    with pytest.raises(ConfigError, match=r"SOLVER\.FOO.*command-line"):
        get_cfg().merge_from_list(["SOLVER.FOO", "1"])
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        get_cfg().merge_from_list(["SOLVER.BASE_LR"])


def test_yaml_is_read_safely(tmp_path):
    evil = _write(tmp_path / "evil.yaml", "SEED: !!python/object/apply:os.getpid []\n")
    with pytest.raises(Exception, match="could not determine a constructor|ConstructorError"):
        get_cfg().merge_from_file(evil)
    with pytest.raises(ValueError, match="safe_load"):
        get_cfg().merge_from_file(evil, allow_unsafe=True)


def test_dump_round_trips(tmp_path):
    cfg = get_cfg()
    cfg.SOLVER.BASE_LR = 0.123
    path = _write(tmp_path / "dumped.yaml", cfg.dump())
    again = get_cfg()
    again.merge_from_file(path)
    assert again == cfg


class _Head:
    @configurable
    def __init__(self, *, lr: float, max_iter: int, name: str = "head"):
        self.lr, self.max_iter, self.name = lr, max_iter, name

    @classmethod
    def from_config(cls, cfg, name: str = "from-cfg"):
        return {"lr": cfg.SOLVER.BASE_LR, "max_iter": cfg.SOLVER.MAX_ITER, "name": name}


def test_configurable_from_kwargs_and_from_cfg():
    explicit = _Head(lr=0.5, max_iter=3)
    assert (explicit.lr, explicit.max_iter, explicit.name) == (0.5, 3, "head")
    cfg = get_cfg()
    built = _Head(cfg)
    assert (built.lr, built.max_iter, built.name) == (
        cfg.SOLVER.BASE_LR,
        cfg.SOLVER.MAX_ITER,
        "from-cfg",
    )
    overridden = _Head(cfg, name="x", max_iter=9)  # from_config args and __init__ overrides
    assert (overridden.name, overridden.max_iter) == ("x", 9)
    assert _Head(cfg=cfg).lr == cfg.SOLVER.BASE_LR
