"""Path keys of a config: absolute in the saved config.yaml, checked with errors naming the key."""

from __future__ import annotations

import uuid

import pytest

from ovvision.config import ConfigError, get_cfg, load_config
from ovvision.data import DatasetCatalog, MetadataCatalog
from ovvision.engine import default_setup
from ovvision.engine.config_paths import (
    PATH_KEYS,
    USED_ONLY_WHEN,
    MissingFileError,
    absolute_config_paths,
    check_config_files,
    check_dataset_files,
)
from ovvision.engine.defaults import load_tool_config, prepare_datasets_and_files, run_tool


def _get(cfg, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def test_every_path_key_is_a_config_key():
    cfg = get_cfg()
    for key in PATH_KEYS:
        assert isinstance(_get(cfg, key), str), key  # a renamed key must be renamed here too
    for key, (deciding_key, _) in USED_ONLY_WHEN.items():
        assert key in PATH_KEYS and _get(cfg, deciding_key) is not None, key


def test_files_of_unused_keys_are_not_checked():
    cfg = get_cfg()
    cfg.VOCABULARY.NAME = "custom"
    cfg.VOCABULARY.CUSTOM = "cup,lamp"
    cfg.VOCABULARY.ANNOTATION_JSON = "datasets/not/here.json"  # read by lvis/ov_shapes only
    check_config_files(cfg)
    cfg.VOCABULARY.NAME = "ov_shapes"
    with pytest.raises(MissingFileError, match="^VOCABULARY.ANNOTATION_JSON: file 'datasets/not"):
        check_config_files(cfg)
    cfg.VOCABULARY.NAME = "custom"
    cfg.VOCABULARY.CUSTOM = "classes.txt"
    with pytest.raises(MissingFileError, match="^VOCABULARY.CUSTOM: file 'classes.txt'"):
        check_config_files(cfg)


def _relative_cfg():
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = "runs/init.pth"
    cfg.MODEL.GROUNDER.DETECTOR_WEIGHTS = "runs/detector.pth"
    cfg.MODEL.OSM.DETECTOR_WEIGHTS = "runs/osm_detector.pth"
    cfg.MODEL.OSM.LANGUAGE_MODEL = "models/lm"
    cfg.MODEL.TEXT_ENCODER.PRETRAINED = "weights/clip.pt"
    cfg.MODEL.TIMM.PRETRAINED = "timm"  # a tag, not a path
    cfg.VOCABULARY.CUSTOM = "classes.txt"
    cfg.VOCABULARY.ANNOTATION_JSON = "../ann/val.json"
    cfg.VOCABULARY.CACHE_DIR = "cache"
    cfg.OUTPUT_DIR = "output/run"
    cfg.DATASETS.REGISTER = ("name=mine,json=ann/train.json,images=imgs,novel=lamp",)
    return cfg


def test_relative_paths_become_absolute_and_tags_stay(tmp_path):
    base = str(tmp_path / "project")
    out = absolute_config_paths(_relative_cfg(), base)
    expected = {
        "MODEL.WEIGHTS": f"{base}/runs/init.pth",
        "MODEL.GROUNDER.DETECTOR_WEIGHTS": f"{base}/runs/detector.pth",
        "MODEL.OSM.DETECTOR_WEIGHTS": f"{base}/runs/osm_detector.pth",
        "MODEL.OSM.LANGUAGE_MODEL": f"{base}/models/lm",
        "MODEL.TEXT_ENCODER.PRETRAINED": f"{base}/weights/clip.pt",
        "MODEL.TIMM.PRETRAINED": "timm",  # a tag stays
        "VOCABULARY.CUSTOM": f"{base}/classes.txt",
        "VOCABULARY.ANNOTATION_JSON": f"{tmp_path}/ann/val.json",
        "VOCABULARY.CACHE_DIR": f"{base}/cache",
        "OUTPUT_DIR": f"{base}/output/run",
        "DATASETS.REGISTER": (
            f"name=mine,json={base}/ann/train.json,images={base}/imgs,novel=lamp",
        ),
    }
    assert {key: _get(out, key) for key in expected} == expected
    cfg = get_cfg()
    cfg.MODEL.TEXT_ENCODER.PRETRAINED = "openai"
    cfg.VOCABULARY.CUSTOM = "cup,st. bernard|dog"
    unchanged = ("MODEL.TEXT_ENCODER.PRETRAINED", "VOCABULARY.CUSTOM", "MODEL.WEIGHTS")
    same = absolute_config_paths(cfg, base)
    assert [_get(same, k) for k in unchanged] == ["openai", "cup,st. bernard|dog", ""]


def test_saved_config_holds_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _relative_cfg()
    cfg.freeze()
    default_setup(cfg)
    saved = load_config(str(tmp_path / "output" / "run" / "config.yaml"))
    assert _get(saved, "MODEL.TEXT_ENCODER.PRETRAINED") == str(tmp_path / "weights" / "clip.pt")
    assert _get(saved, "OUTPUT_DIR") == str(tmp_path / "output" / "run")
    assert _get(saved, "DATASETS.REGISTER")[0].startswith(f"name=mine,json={tmp_path}/ann/train")
    # The running config is unchanged.
    assert _get(cfg, "MODEL.TEXT_ENCODER.PRETRAINED") == "weights/clip.pt"


def test_missing_files_name_their_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = get_cfg()
    cfg.MODEL.TEXT_ENCODER.PRETRAINED = "weights/clip.pt"
    with pytest.raises(MissingFileError) as error:
        check_config_files(cfg)
    assert str(error.value) == (
        f"MODEL.TEXT_ENCODER.PRETRAINED: file 'weights/clip.pt' (relative to the current folder "
        f"{tmp_path}) does not exist"
    )
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "clip.pt").write_bytes(b"")
    cfg.VOCABULARY.EMBEDDINGS = str(tmp_path / "none.npy")
    with pytest.raises(MissingFileError, match=r"^VOCABULARY.EMBEDDINGS: file '.*none.npy' does"):
        check_config_files(cfg)
    cfg.VOCABULARY.EMBEDDINGS = ""
    cfg.OUTPUT_DIR = "not/yet/there"  # an output folder is created, not checked
    check_config_files(cfg)
    cfg.MODEL.OSM.LANGUAGE_MODEL = "models/lm"  # read by OSMClassifier only
    check_config_files(cfg)
    cfg.MODEL.META_ARCHITECTURE = "OSMClassifier"
    with pytest.raises(MissingFileError, match="^MODEL.OSM.LANGUAGE_MODEL: folder 'models/lm'"):
        check_config_files(cfg)
    (tmp_path / "models" / "lm").mkdir(parents=True)
    cfg.MODEL.OSM.DETECTOR_WEIGHTS = "detector.pth"  # PROPOSALS "detector": read
    with pytest.raises(MissingFileError, match="^MODEL.OSM.DETECTOR_WEIGHTS: file 'detector.pth'"):
        check_config_files(cfg)
    cfg.MODEL.OSM.PROPOSALS = "ground_truth"
    check_config_files(cfg)


@pytest.fixture
def dataset_name():
    """A fresh dataset name, unregistered after the test."""
    name = f"mine_{uuid.uuid4().hex[:8]}"
    yield name
    for catalog in (DatasetCatalog, MetadataCatalog):
        if name in catalog.list():
            catalog.remove(name)


def test_registered_and_builtin_dataset_files_are_checked(tmp_path, monkeypatch, dataset_name):
    monkeypatch.chdir(tmp_path)
    name = dataset_name
    cfg = get_cfg()
    cfg.DATASETS.REGISTER = (f"name={name},json=ann.json,images=imgs",)
    cfg.DATASETS.TRAIN = (name,)
    with pytest.raises(MissingFileError) as error:
        prepare_datasets_and_files(cfg)
    assert str(error.value).startswith(
        f"DATASETS.REGISTER[0] ('name={name},json=ann.json,images=imgs') key 'json': file "
        f"'{tmp_path}/ann.json' does not exist"
    )
    (tmp_path / "ann.json").write_text("{}")  # not parsed: the check reads no json
    with pytest.raises(MissingFileError, match=r"key 'images': file '.*/imgs' does not exist"):
        prepare_datasets_and_files(cfg)
    (tmp_path / "imgs").mkdir()
    prepare_datasets_and_files(cfg)
    with pytest.raises(ConfigError, match="--dataset: dataset 'nope' is not registered"):
        check_dataset_files("nope", "--dataset")
    # Built-in datasets were registered under ./datasets, which this folder lacks.
    with pytest.raises(MissingFileError, match=r"DATASETS.TEST dataset 'ov_shapes_val': file"):
        check_dataset_files("ov_shapes_val", "DATASETS.TEST")


def test_run_tool_reports_user_errors_on_one_line(capsys):
    def missing() -> int:
        raise MissingFileError("--weights", "/no/such/model.pth")

    with pytest.raises(SystemExit) as exit_info:
        run_tool(missing, prog="tool.py")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "tool.py: error: --weights: file '/no/such/model.pth' does not exist\n"

    def multi_line() -> int:
        raise ValueError("first\nsecond")

    with pytest.raises(SystemExit) as exit_info:
        run_tool(multi_line, prog="tool.py", user_errors=(ValueError,))
    assert exit_info.value.code == 2 and capsys.readouterr().err == "tool.py: error: first second\n"
    with pytest.raises(ValueError):  # not a user error of this tool: a bug, with its traceback
        run_tool(multi_line, prog="tool.py")
    with pytest.raises(SystemExit) as exit_info:
        run_tool(lambda: None)
    assert exit_info.value.code == 0


def test_list_value_without_brackets_is_a_config_error_with_a_hint(tmp_path):
    entry = "name=a,json=b.json,images=c"
    with pytest.raises(ConfigError) as error:
        load_tool_config("", ["DATASETS.REGISTER", entry])
    assert "DATASETS.REGISTER" in str(error.value) and "Python literals" in str(error.value)
    cfg = load_tool_config("", ["DATASETS.REGISTER", f"('{entry}',)"])
    assert tuple(cfg.DATASETS.REGISTER) == (entry,)
    with pytest.raises(MissingFileError, match="^--config-file: file '.*none.yaml' does not"):
        load_tool_config(str(tmp_path / "none.yaml"))
