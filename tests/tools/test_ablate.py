"""tools/ablate.py end to end: variants x seeds trained through train_net.py on a tiny OV-Shapes,
reports consistent with the per-run results, resuming without training anything twice, and a
failing variant reported while the others go on."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ovvision.data.datasets.ov_shapes import generate_ov_shapes

from .._tools import load_tool

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("AP", "AP50", "AP50-base", "AP50-novel")
# A 2-iteration detector on 1 image per batch, scoring few proposals; SCORE_THRESH_TEST 0 keeps
# detections of the barely trained model, so that seeds give different, non-zero metrics.
TINY_CONFIG = """\
_BASE_: "{root}/configs/ov_shapes/ovrcnn_clip_frozen.yaml"
MODEL:
  TEXT_ENCODER:
    PRETRAINED: ""
  RPN:
    PRE_NMS_TOPK_TRAIN: 100
    POST_NMS_TOPK_TRAIN: 50
    PRE_NMS_TOPK_TEST: 50
    POST_NMS_TOPK_TEST: 20
  ROI_HEADS:
    SCORE_THRESH_TEST: 0.0
  CLIP_SCORE_FUSION:
    MAX_REGIONS_PER_IMAGE: 20
VOCABULARY:
  ANNOTATION_JSON: "{data}/ov_shapes/annotations/instances_val.json"
  CACHE_DIR: "{data}/cache"
SOLVER:
  MAX_ITER: 2
  IMS_PER_BATCH: 1
  CHECKPOINT_PERIOD: 1
  WARMUP_ITERS: 1
  STEPS: (3,)
"""


def _ablate(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "ablate.py"), *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


def _table(md: str, title: str) -> dict[str, list[str]]:
    """Rows of the markdown table under ``## {title}``: variant -> its cells."""
    section = md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def _values(runs: dict[int, dict], task: str, column: str) -> list[float]:
    """A metric (or the wall time) of a variant's runs, seed by seed."""
    return [r["wall_time_s"] if column == "wall_time_s" else r[task][column] for r in runs.values()]


def _expected_cell(values: list[float], baseline: list[float] | None) -> tuple:
    """(mean, sample std, difference of means to the baseline), computed here from the runs."""
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    diff = None if baseline is None else mean - sum(baseline) / len(baseline)
    return mean, std, diff


def _parse_cell(cell: str) -> tuple:
    m = re.fullmatch(r"(-?\d+\.\d+) ± (\d+\.\d+)(?: \(([+-]\d+\.\d+)\))?", cell)
    assert m, cell
    return float(m[1]), float(m[2]), None if m[3] is None else float(m[3])


@pytest.mark.slow
def test_ablate_variants_seeds_reports_resume_and_failure(tmp_path):
    data = tmp_path / "datasets"
    generate_ov_shapes(
        str(data / "ov_shapes"), seed=3, num_train=8, num_val=4, workers=1, progress=False
    )
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG.format(root=ROOT, data=data))
    env = {**os.environ, "OVVISION_DATASETS": str(data)}
    out = tmp_path / "ablation"
    args = [
        "--config-file", str(config),
        "--variant", "bs32", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
        "--variant", "broken", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "many",
        "--seeds", "0", "1", "--output", str(out),
        "DATALOADER.NUM_WORKERS", "0",  # for every run
    ]  # fmt: skip

    first = _ablate(args, env)
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    report = json.loads((out / "ablation.json").read_text())
    assert [v["name"] for v in report["variants"]] == ["baseline", "bs32", "broken"]
    runs = {v["name"]: {r["seed"]: r for r in v["runs"]} for v in report["variants"]}
    for name in ("baseline", "bs32"):
        for seed in (0, 1):
            run = runs[name][seed]
            assert run["status"] == "ok" and run["error"] is None, run
            assert run["output_dir"] == str(out / name / f"seed{seed}")
            assert run["wall_time_s"] > 0
            for task in ("bbox", "segm"):
                assert all(0.0 <= run[task][m] <= 100.0 for m in METRICS), run
            saved = (out / name / f"seed{seed}" / "config.yaml").read_text()
            assert f"SEED: {seed}\n" in saved
            assert ("BATCH_SIZE_PER_IMAGE: 32\n" in saved) == (name == "bs32")
    for run in runs["broken"].values():
        assert run["status"] == "failed"
        assert run["error"].startswith("train_net.py exited with 2\n"), run["error"]
        assert "BATCH_SIZE_PER_IMAGE" in run["error"] and "Traceback" not in run["error"]
        assert run["bbox"]["AP50"] is None
    assert runs["baseline"][0]["bbox"] != runs["baseline"][1]["bbox"], "seeds gave one result"

    # The tables equal the mean, sample std and difference to the baseline computed here.
    md = (out / "ablation.md").read_text()
    # each successful run wrote its evaluation report, and the variant list links it
    for name in ("baseline", "bs32"):
        assert (out / name / "seed1" / "report" / "report.md").is_file()
        assert f"[seed 1]({name}/seed1/report/report.md)" in md
    checked_std = []
    for task, title in (("bbox", "Box (bbox)"), ("segm", "Mask (segm)")):
        table = _table(md, title)
        assert table["broken"][0] == "0/2" and table["bs32"][0] == "2/2"
        assert set(table["broken"][1:]) == {"—"}
        columns = [*METRICS, *(["wall_time_s"] if task == "bbox" else [])]
        for name in ("baseline", "bs32"):
            for i, column in enumerate(columns):
                values = _values(runs[name], task, column)
                base = None if name == "baseline" else _values(runs["baseline"], task, column)
                expected = _expected_cell(values, base)
                shown = _parse_cell(table[name][1 + i])
                for got, want in zip(shown, expected):
                    assert (got is None) == (want is None)
                    assert got is None or abs(got - want) <= 0.005 + 1e-9, (name, column, shown)
                checked_std.append(expected[1])
    assert max(checked_std) > 0.1  # a population std (n) would have been caught
    assert "- bs32: `MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE 32`" in md
    assert "- every run: `DATALOADER.NUM_WORKERS 0`" in md
    assert "broken, seed 0" in md
    with Image.open(out / "ablation.png") as image:
        assert image.format == "PNG" and image.width > 100

    # A run killed after its first checkpoint: the pointer was written last, so it names
    # model_0000000.pth, and neither model_final.pth nor the final evaluation exists.
    killed = out / "baseline" / "seed1"
    for name in ("model_final.pth", "model_0000001.pth", "eval_results.json"):
        (killed / name).unlink()
    (killed / "last_checkpoint").write_text("model_0000000.pth")
    finished = [out / n / f"seed{s}" for n in ("baseline", "bs32") for s in (0, 1)]
    finished.remove(killed)
    before = {
        p: ((p / "model_final.pth").stat().st_mtime_ns, (p / "log.txt").read_text())
        for p in finished
    }

    second = _ablate(args, env)
    assert second.returncode == 1, second.stdout[-3000:] + second.stderr[-3000:]
    for p, (mtime, log) in before.items():  # nothing trained, evaluated or logged again
        assert (p / "model_final.pth").stat().st_mtime_ns == mtime
        assert (p / "log.txt").read_text() == log
    resumed_log = (killed / "log.txt").read_text()
    assert "Starting training from iteration 1" in resumed_log
    assert resumed_log.count("Starting training from iteration") == 2
    assert (killed / "model_final.pth").is_file()
    report = json.loads((out / "ablation.json").read_text())
    runs = {v["name"]: {r["seed"]: r for r in v["runs"]} for v in report["variants"]}
    assert runs["baseline"][1]["status"] == "ok" and runs["baseline"][1]["attempts"] == 2
    assert runs["bs32"][0]["attempts"] == 1
    assert [r["status"] for r in runs["broken"].values()] == ["failed", "failed"]

    # Another argument for the same run folders is refused before anything trains.
    changed = _ablate([*args[:-2], "DATALOADER.NUM_WORKERS", "1"], env)
    assert changed.returncode == 2
    assert changed.stderr.count("\n") == 1 and "DATALOADER.NUM_WORKERS: 0 -> 1" in changed.stderr


def _load_ablate():
    return load_tool("ablate")


def test_caption_metrics_get_their_own_table_only_when_a_run_has_them(tmp_path):
    ablate = _load_ablate()
    box = {m: 50.0 for m in METRICS}
    caption = {"BLEU-4": 20.0, "CIDEr-D": 80.0, "mention_recall_base": 90.0,
               "mention_recall_novel": 40.0}  # fmt: skip
    runs = {}
    for name, seed, results in [
        ("baseline", 0, {"bbox": box}),
        ("generation", 0, {"bbox": box, "caption": caption}),
        ("generation", 1, {"bbox": box, "caption": {**caption, "mention_recall_novel": 60.0}}),
    ]:
        folder = tmp_path / name / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "eval_results.json").write_text(json.dumps(results))
        metrics, _ = ablate.read_metrics(folder)
        record = {"seed": seed, "status": "ok", "wall_time_s": 1.0, "dataset": None, **metrics}
        runs.setdefault(name, []).append(record)
    variants = [{"name": n, "overrides": [], "runs": r} for n, r in runs.items()]
    report = {"config_file": "c.yaml", "seeds": [0, 1], "overrides": [], "variants": variants}
    table = _table(ablate.markdown(report), "Captions (caption)")
    header = ["runs ok", *ablate.CAPTION_METRICS]
    cells = dict(zip(header, table["generation"]))
    assert _parse_cell(cells["mention_recall_novel"])[:2] == pytest.approx((50.0, 14.142), 1e-3)
    assert cells["mention_precision_base"] == "—" and table["baseline"][1] == "—"

    report["variants"] = report["variants"][:1]  # no run with captions: no caption table
    assert "## Captions" not in ablate.markdown(report)
