"""DATASETS.REGISTER: COCO-format datasets declared in a config, from YAML or the command line."""

from __future__ import annotations

import os

import pytest

from ovvision.config import get_cfg, load_config
from ovvision.data import DatasetCatalog, MetadataCatalog, get_detection_dataset_dicts
from ovvision.data.datasets.register_from_cfg import (
    DatasetEntryError,
    absolute_entry,
    parse_dataset_entry,
    register_datasets_from_cfg,
)


def _cfg(*entries: str):
    cfg = get_cfg()
    cfg.DATASETS.REGISTER = tuple(entries)
    return cfg


def test_entry_fields_paths_and_novel_classes(tmp_path):
    entry = parse_dataset_entry(
        "name=my_train, json=ann/train.json ,images=imgs,novel=traffic light| cup ,captions=c.json",
        3,
        base_dir=str(tmp_path),
    )
    assert entry.name == "my_train" and entry.index == 3
    assert entry.json_file == str(tmp_path / "ann" / "train.json")
    assert entry.image_root == str(tmp_path / "imgs")
    assert entry.captions_json == str(tmp_path / "c.json")
    assert entry.novel_classes == ("traffic light", "cup")
    absolute = parse_dataset_entry(f"name=a,json={tmp_path}/x.json,images=/data/i", 0, "/else")
    assert (absolute.json_file, absolute.image_root) == (str(tmp_path / "x.json"), "/data/i")
    # Absent "novel": read from the json; present but empty: no novel class.
    assert parse_dataset_entry("name=a,json=x,images=y").novel_classes is None
    assert parse_dataset_entry("name=a,json=x,images=y,novel=").novel_classes == ()


def test_absolute_entry_keeps_names_and_resolves_paths():
    text = absolute_entry("name=a,json=x.json,images=../imgs,novel=lamp|cup", 0, "/home/u/data")
    assert text == "name=a,json=/home/u/data/x.json,images=/home/u/imgs,novel=lamp|cup"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("name=a,json=x.json", "key 'images' is missing"),
        ("name=a,json=,images=y", "key 'json' is missing"),
        ("name=a,json=x.json,images=y,image_root=z", "unknown key 'image_root'"),
        ("name=a,json=x.json,images=y,name=b", "key 'name' is given twice"),
        ("name=a,x.json,images=y", "'x.json' is not key=value"),
    ],
)
def test_bad_entries_name_the_entry_and_the_key(entry, expected):
    with pytest.raises(DatasetEntryError) as error:
        register_datasets_from_cfg(_cfg("name=ok,json=a.json,images=b", entry))
    message = str(error.value)
    assert message.startswith(f"DATASETS.REGISTER[1] ('{entry}')") and expected in message


def test_two_entries_with_one_name_and_builtin_names_are_refused(unique_name):
    name = unique_name("dup")
    with pytest.raises(DatasetEntryError, match=r"REGISTER\[1\].*also declared by.*REGISTER\[0\]"):
        register_datasets_from_cfg(
            _cfg(f"name={name},json=a.json,images=b", f"name={name},json=c.json,images=d")
        )
    with pytest.raises(DatasetEntryError, match="'ov_shapes_val' is already registered"):
        register_datasets_from_cfg(_cfg("name=ov_shapes_val,json=a.json,images=b"))


def test_registered_dataset_loads_with_its_novel_classes(coco_root, unique_name):
    name = unique_name("mine")
    ann = os.path.join(coco_root, "annotations", "instances_val2017.json")
    entry = f"name={name},json={ann},images={coco_root}/val2017,novel=cat|stop sign"
    cfg = _cfg(entry)
    assert [e.name for e in register_datasets_from_cfg(cfg)] == [name]
    register_datasets_from_cfg(cfg)  # the same entry again (every tool calls it): a no-op
    meta = MetadataCatalog.get(name)
    assert meta.novel_classes == ["cat", "stop sign"]
    assert "cat" not in meta.base_classes and "person" in meta.base_classes
    assert meta.evaluator_type == "coco_ov" and meta.json_file == ann
    dicts = get_detection_dataset_dicts([name])
    assert [d["image_id"] for d in dicts] == [7]
    assert dicts[0]["file_name"] == os.path.join(coco_root, "val2017", "000000000007.jpg")
    assert len(dicts[0]["annotations"]) == 3
    # The same name with other fields is a conflict, not a silent re-registration.
    with pytest.raises(DatasetEntryError, match="already registered .with other fields"):
        register_datasets_from_cfg(_cfg(entry.replace("novel=cat|stop sign", "novel=cat")))
    assert name in DatasetCatalog


def test_yaml_list_and_command_line_tuple_give_the_same_entries(tmp_path):
    entries = (
        "name=my_train,json=data/train.json,images=data/images,novel=lamp|cup",
        "name=my_val,json=data/val.json,images=data/images",
    )
    yaml = tmp_path / "mine.yaml"
    yaml.write_text("DATASETS:\n  REGISTER:\n" + "".join(f'    - "{e}"\n' for e in entries))
    from_yaml = load_config(str(yaml)).DATASETS.REGISTER
    from_cli = load_config("", ["DATASETS.REGISTER", repr(entries)]).DATASETS.REGISTER
    assert tuple(from_yaml) == tuple(from_cli) == entries
