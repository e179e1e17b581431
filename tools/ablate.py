#!/usr/bin/env python
"""Train and evaluate variants of a config with several seeds; report mean ± std per variant.

    python tools/ablate.py --config-file configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml \\
        --variant bs32 MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE 32 \\
        --variant lr2 SOLVER.BASE_LR 0.002 SOLVER.WARMUP_ITERS 200 \\
        --seeds 0 1 2 --output output/ablation [KEY VALUE ... for every run]

The baseline (the config as it is) always runs; each --variant NAME adds its KEY VALUE overrides
to it. Every (variant, seed) is a ``tools/train_net.py --resume`` run, started in the folder
ablate.py runs in (relative paths mean what they mean to train_net.py run there), with
``SEED <seed>``
and ``OUTPUT_DIR DIR/<variant>/seed<seed>``; its output goes to ``ablate.log`` in that folder.
The seed changes the detector's initialisation and data order, not the benchmark's images.
Runs go seed by seed (every variant with the first seed, then the second, ...), so a broken
variant shows up early. The overrides for every run go after ``--output DIR``, or after ``--``
(pairs written right after a --variant belong to that variant).

Resuming: run the same command again. A finished run (``eval_results.json`` written after
``model_final.pth``) is read, not trained again; an unfinished one (killed, or failed earlier)
continues from its last checkpoint. Each run folder keeps the arguments it was started with in
``ablate_run.json``: a rerun whose arguments differ for a run stops before training anything
(edit the config file's content only with a new --output: files are not compared).

Writes ``DIR/ablation.json`` (per variant and seed: box and mask AP, AP50, AP50-base, AP50-novel,
with ``TEST.CAPTIONS`` the caption metrics (BLEU-4, CIDEr-D, object-mention recall and precision,
base and novel), wall time of train_net.py, status ok/failed and the end of the log of a failed
run), ``DIR/ablation.md`` (mean ± sample standard deviation over seeds and the difference to the
baseline, with a link to each run's evaluation report) and ``DIR/ablation.png`` (box AP50-base and
AP50-novel per variant, std error bars), after every run.
Each run writes its evaluation
report (``train_net.py --report``) into ``DIR/<variant>/seed<seed>/report/``.
With several test datasets the metrics are those of the first one in the
run's ``DATASETS.TEST``. Exits 1 if any run failed, after writing the reports.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import datetime
import fcntl
import json
import logging
import math
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ovvision.engine.config_paths import require_file
from ovvision.engine.defaults import exit_with_error, run_tool
from ovvision.evaluation.coco_results import EVAL_RESULTS_FILE, write_json_atomic
from ovvision.utils.file_io import atomic_write
from ovvision.utils.logger import setup_logger

logger = logging.getLogger("ovvision.ablate")

REPO = Path(__file__).resolve().parents[1]
BASELINE = "baseline"
TASKS = {"bbox": "Box", "segm": "Mask", "caption": "Captions"}
METRICS = ("AP", "AP50", "AP50-base", "AP50-novel")
CAPTION_METRICS = (
    "BLEU-4", "CIDEr-D", "mention_recall_base", "mention_recall_novel",
    "mention_precision_base", "mention_precision_novel",
)  # fmt: skip
TASK_METRICS = {"bbox": METRICS, "segm": METRICS, "caption": CAPTION_METRICS}
STATE_FILE = "ablate_run.json"  # per run: the arguments it was started with, its attempts
LOG_FILE = "ablate.log"  # per run: train_net.py's output, every attempt appended
ERROR_LINES = 20  # lines of a failed run's log kept in the report
SET_BY_TOOL = ("SEED", "OUTPUT_DIR")
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named list of ``KEY VALUE`` overrides (empty for the baseline)."""

    name: str
    overrides: tuple[str, ...]


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the values that are not None.

    Returns:
        ``(mean, std)``; the mean is None without values, the std None with fewer than two.
    """
    defined = [float(v) for v in values if v is not None]
    mean = statistics.fmean(defined) if defined else None
    std = statistics.stdev(defined) if len(defined) > 1 else None
    return mean, std


def _pairs(opts: Sequence[str]) -> dict[str, str]:
    return dict(zip(opts[0::2], opts[1::2]))


def parse_arguments(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[Variant]]:
    """The command line; bad variant syntax ends with a one-line error (exit 2)."""
    p = argparse.ArgumentParser(
        prog="ablate.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config-file", required=True, metavar="FILE", help="the baseline's config")
    p.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "KEY VALUE"),
        help="a variant: its name (a folder name) and KEY VALUE overrides; repeat for more",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--output", required=True, metavar="DIR", help="folder of runs and reports")
    p.add_argument("--num-gpus", type=int, default=1, help="passed on to train_net.py")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every run")
    args = p.parse_args(argv)
    if args.opts[:1] == ["--"]:
        args.opts = args.opts[1:]
    if len(args.opts) % 2:
        exit_with_error(f"the overrides for every run need KEY VALUE pairs, got {args.opts}")
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        exit_with_error(f"--seeds must be distinct and >= 0 (SEED < 0 is random), got {args.seeds}")
    variants = [Variant(BASELINE, ())]
    for name, *overrides in args.variant:
        if not VARIANT_NAME.fullmatch(name) or name == BASELINE:
            exit_with_error(
                f"--variant {name!r}: a variant's name is a folder name other than {BASELINE!r} "
                "(letters, digits, . _ + -), followed by KEY VALUE pairs"
            )
        if not overrides or len(overrides) % 2:
            exit_with_error(f"--variant {name}: needs KEY VALUE pairs, got {overrides}")
        if name in (v.name for v in variants):
            exit_with_error(f"--variant {name}: the name is given twice")
        variants.append(Variant(name, tuple(overrides)))
    named = [(f"--variant {v.name}", v.overrides) for v in variants[1:]]
    for where, overrides in [*named, ("the overrides for every run", args.opts)]:
        for key in SET_BY_TOOL:
            if key in _pairs(overrides):
                exit_with_error(f"{where}: {key} is set by ablate.py for each run")
    return args, variants


@dataclasses.dataclass(frozen=True)
class Run:
    """One (variant, seed) training run and the arguments train_net.py gets for it."""

    variant: Variant
    seed: int
    folder: Path
    config_file: str
    opts: tuple[str, ...]  # KEY VALUE overrides: every run's, the variant's, SEED

    def command(self, num_gpus: int) -> list[str]:
        return [
            sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file",
            self.config_file, "--num-gpus", str(num_gpus), "--resume",
            "--report", str(self.folder / "report"), *self.opts, "OUTPUT_DIR", str(self.folder),
        ]  # fmt: skip

    def arguments(self) -> dict[str, Any]:
        """What a rerun must match to continue this run (the folder itself may move)."""
        return {"config_file": self.config_file, "opts": list(self.opts)}

    def finished(self) -> bool:
        """Trained to the end and evaluated after that (not a periodic evaluation's file)."""
        final, results = self.folder / "model_final.pth", self.folder / EVAL_RESULTS_FILE
        return (
            final.is_file()
            and results.is_file()
            and results.stat().st_mtime_ns >= final.stat().st_mtime_ns
        )

    def state(self) -> dict[str, Any]:
        path = self.folder / STATE_FILE
        return json.loads(path.read_text()) if path.is_file() else {}


def plan_runs(args: argparse.Namespace, variants: Sequence[Variant]) -> list[Run]:
    """Every (variant, seed), seed by seed; stops if a run folder was started differently."""
    config_file = os.path.abspath(args.config_file)
    runs = [
        Run(
            variant,
            seed,
            Path(args.output).resolve() / variant.name / f"seed{seed}",
            config_file,
            (*args.opts, *variant.overrides, "SEED", str(seed)),
        )
        for seed in args.seeds
        for variant in variants
    ]
    for run in runs:
        before = run.state().get("arguments")
        if before is not None and before != run.arguments():
            old, new = _pairs(before["opts"]), _pairs(run.opts)
            changed = [
                f"{k}: {old.get(k, '(unset)')} -> {new.get(k, '(unset)')}"
                for k in sorted(old.keys() | new.keys())
                if old.get(k) != new.get(k)
            ]
            if before["config_file"] != run.config_file:
                changed.insert(0, f"--config-file: {before['config_file']} -> {run.config_file}")
            exit_with_error(
                f"{run.folder} was started with other arguments ({'; '.join(changed)}): use "
                "another --output, or delete that folder to train it again"
            )
    return runs


def _die_with_parent() -> None:
    """In the child: get SIGTERM when ablate.py dies, so a killed ablation leaves no orphan
    training into the folder that the next call resumes."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _save_state(run: Run, attempts: list[dict[str, Any]]) -> None:
    write_json_atomic(
        run.folder / STATE_FILE, {"arguments": run.arguments(), "attempts": attempts}, indent=2
    )


def _attempts(run: Run) -> list[dict[str, Any]]:
    """The run's earlier attempts; one that ablate.py did not see end (killed with it) lasted
    until the last write to its log."""
    attempts = run.state().get("attempts", [])
    log = run.folder / LOG_FILE
    for attempt in attempts:
        if attempt["seconds"] is None and log.is_file():
            attempt["seconds"] = max(log.stat().st_mtime - attempt["started"], 0.0)
    return attempts


def train(run: Run, num_gpus: int) -> str | None:
    """Run train_net.py for ``run`` (resuming from its last checkpoint, if any).

    Returns:
        None on success, else the error: the end of this attempt's log.
    """
    run.folder.mkdir(parents=True, exist_ok=True)
    attempts = _attempts(run)
    attempts.append({"started": time.time(), "seconds": None, "returncode": None})
    _save_state(run, attempts)
    command = run.command(num_gpus)
    start = time.perf_counter()
    with open(run.folder / LOG_FILE, "ab") as log:
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        log.write(
            f"=== ablate.py, attempt {len(attempts)}, {stamp}: {shlex.join(command)}\n".encode()
        )
        log.flush()
        offset = log.tell()  # the error shown is this attempt's output, without that header
        on_linux = sys.platform.startswith("linux")
        returncode = subprocess.run(
            command, cwd=os.getcwd(), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if on_linux else None,
        ).returncode  # fmt: skip
    attempts[-1].update(seconds=time.perf_counter() - start, returncode=returncode)
    _save_state(run, attempts)
    if returncode == 0 and run.finished():
        return None
    with open(run.folder / LOG_FILE, "rb") as log:
        log.seek(offset)
        tail = log.read().decode(errors="replace").rstrip().splitlines()[-ERROR_LINES:]
    reason = f"train_net.py exited with {returncode}"
    if returncode == 0:
        reason += f" without writing {EVAL_RESULTS_FILE} after model_final.pth (DATASETS.TEST?)"
    return "\n".join([reason, *tail])


def read_metrics(folder: Path) -> tuple[dict[str, dict[str, float | None]], str | None]:
    """The run's final metrics: ``({"bbox": {"AP": ..}, "segm": {..}}, dataset)``.

    With several test datasets ``eval_results.json`` is keyed by dataset; the first of the
    run's ``DATASETS.TEST`` is taken (and named); with one, ``dataset`` is None.
    """
    results = json.loads((folder / EVAL_RESULTS_FILE).read_text())
    dataset = None
    if not set(results) & set(TASKS):
        config = yaml.safe_load((folder / "config.yaml").read_text())
        tests = [name for name in config["DATASETS"]["TEST"] if name in results]
        dataset = tests[0] if tests else sorted(results)[0]
        results = results[dataset]
    metrics = {
        task: {m: results.get(task, {}).get(m) for m in TASK_METRICS[task]} for task in TASKS
    }  # a model without masks has no "segm", one without TEST.CAPTIONS no "caption": None
    return metrics, dataset


def run_record(run: Run, error: str | None) -> dict[str, Any]:
    """The entry of ``ablation.json`` for one run."""
    attempts = _attempts(run)
    seconds = [a["seconds"] for a in attempts if a["seconds"] is not None]
    record: dict[str, Any] = {
        "seed": run.seed,
        "output_dir": str(run.folder),
        "attempts": len(attempts),
        "wall_time_s": round(sum(seconds), 3) if seconds else None,
        "status": "failed" if error else "ok",
        "error": error,
        "dataset": None,
    }
    metrics = {t: dict.fromkeys(TASK_METRICS[t]) for t in TASKS}
    if error is None:
        metrics, record["dataset"] = read_metrics(run.folder)
    return {**record, **metrics}


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and std over the successful runs of a variant, per task and metric (and wall time)."""
    ok = [r for r in runs if r["status"] == "ok"]
    summary: dict[str, dict[str, Any]] = {
        task: {m: mean_std([r.get(task, {}).get(m) for r in ok]) for m in TASK_METRICS[task]}
        for task in TASKS
    }  # .get: a report written before the caption metrics existed has none
    summary["time"] = {"wall_time_s": mean_std([r["wall_time_s"] for r in ok])}
    return summary


def _cell(value: tuple[float | None, float | None], base: float | None) -> str:
    mean, std = value
    if mean is None:
        return "—"
    text = f"{mean:.2f} ± {'—' if std is None else f'{std:.2f}'}"
    return text if base is None else f"{text} ({mean - base:+.2f})"


def markdown(report: dict[str, Any]) -> str:
    """``ablation.md``: a table per task (mean ± std and difference to the baseline)."""
    variants = report["variants"]
    summaries = {v["name"]: summarize(v["runs"]) for v in variants}
    base = summaries[BASELINE]
    datasets = sorted({r["dataset"] for v in variants for r in v["runs"] if r["dataset"]})
    lines = [
        f"# Ablation of {report['config_file']}",
        "",
        f"Seeds {', '.join(map(str, report['seeds']))}. Each cell: mean ± sample standard "
        "deviation over the seeds whose run succeeded and has the metric (— where undefined), "
        "and in brackets the difference of the mean to the baseline's. Metrics in percent, "
        "from each run's eval_results.json"
        + (f" (first test dataset: {', '.join(datasets)})." if datasets else "."),
    ]
    for task, title in TASKS.items():
        metrics = TASK_METRICS[task]
        if task == "caption" and all(
            s[task][m][0] is None for s in summaries.values() for m in metrics
        ):
            continue  # no run wrote captions (TEST.CAPTIONS off): no table
        extra = ["wall time (s)"] if task == "bbox" else []
        lines += ["", f"## {title} ({task})", ""]
        lines.append("| " + " | ".join(["variant", "runs ok", *metrics, *extra]) + " |")
        lines.append("|" + "---|" * (2 + len(metrics) + len(extra)))
        for v in variants:
            s, is_base = summaries[v["name"]], v["name"] == BASELINE
            cells = [_cell(s[task][m], None if is_base else base[task][m][0]) for m in metrics]
            if extra:
                time_base = None if is_base else base["time"]["wall_time_s"][0]
                cells.append(_cell(s["time"]["wall_time_s"], time_base))
            ok = sum(r["status"] == "ok" for r in v["runs"])
            lines.append("| " + " | ".join([v["name"], f"{ok}/{len(v['runs'])}", *cells]) + " |")
    lines += ["", "## Variants", ""]
    for v in variants:
        overrides = f"`{shlex.join(v['overrides'])}`" if v["overrides"] else "the config as it is"
        reports = [
            f"[seed {r['seed']}]({v['name']}/seed{r['seed']}/report/report.md)"
            for r in v["runs"]
            if r.get("output_dir") and (Path(r["output_dir"]) / "report" / "report.md").is_file()
        ]
        lines.append(
            f"- {v['name']}: {overrides}" + (f"; reports: {', '.join(reports)}" if reports else "")
        )
    if report["overrides"]:
        lines.append(f"- every run: `{shlex.join(report['overrides'])}`")
    failed = [(v["name"], r) for v in variants for r in v["runs"] if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed runs"]
        for name, r in failed:
            lines += ["", f"{name}, seed {r['seed']} ({r['output_dir']}):", "", "```"]
            lines += [r["error"], "```"]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    """``ablation.png``: box AP50-base and AP50-novel per variant, sample std as error bars."""
    names = [
        f"{v['name']}\n{sum(r['status'] == 'ok' for r in v['runs'])}/{len(v['runs'])} ok"
        for v in report["variants"]
    ]
    summaries = [summarize(v["runs"])["bbox"] for v in report["variants"]]
    fig = Figure(figsize=(max(4.0, 1.1 * len(names) + 2.0), 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    width = 0.38
    for i, metric in enumerate(("AP50-base", "AP50-novel")):
        means = [math.nan if s[metric][0] is None else s[metric][0] for s in summaries]
        stds = [0.0 if s[metric][1] is None else s[metric][1] for s in summaries]
        ax.bar(x + (i - 0.5) * width, means, width, yerr=stds, capsize=3, label=metric)
    ax.set_xticks(x, names, rotation=20 if len(names) > 4 else 0)
    ax.set_ylabel("box AP50 (%)")
    ax.set_ylim(bottom=0.0)
    ax.set_title(f"mean ± std over seeds {', '.join(map(str, report['seeds']))}")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))


def write_reports(report: dict[str, Any], output: Path) -> None:
    """``ablation.json``, ``ablation.md`` and ``ablation.png`` in ``output``, each atomically."""
    write_json_atomic(output / "ablation.json", report, indent=2)
    text = markdown(report)
    atomic_write(output / "ablation.md", lambda f: f.write(text.encode()))
    plot(report, output / "ablation.png")


@contextlib.contextmanager
def locked(output: Path) -> Iterator[None]:
    """One ablate.py at a time per output folder (two would train the same runs at once)."""
    output.mkdir(parents=True, exist_ok=True)
    with open(output / ".ablate.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            exit_with_error(f"another ablate.py is running on {output}")
        yield


def main(argv: Sequence[str] | None = None) -> int:
    args, variants = parse_arguments(argv)
    setup_logger(None, name="ovvision.ablate")
    require_file(args.config_file, "--config-file")
    output = Path(args.output).resolve()
    with locked(output):
        runs = plan_runs(args, variants)
        records: dict[tuple[str, int], dict[str, Any]] = {}
        for i, run in enumerate(runs, 1):
            where = f"[{i}/{len(runs)}] {run.variant.name}, seed {run.seed}"
            error = None
            if run.finished():
                logger.info("%s: finished earlier, read from %s", where, run.folder)
            else:
                logger.info("%s: training (log: %s)", where, run.folder / LOG_FILE)
                error = train(run, args.num_gpus)
                if error:
                    logger.error("%s failed: %s", where, error.splitlines()[-1])
            records[run.variant.name, run.seed] = run_record(run, error)
            write_reports(_report(args, variants, runs, records), output)
    failed = sum(r["status"] == "failed" for r in records.values())
    logger.info("Reports written to %s (%d of %d runs failed)", output, failed, len(runs))
    return 1 if failed else 0


def _report(
    args: argparse.Namespace,
    variants: Sequence[Variant],
    runs: Sequence[Run],
    records: dict[tuple[str, int], dict[str, Any]],
) -> dict[str, Any]:
    """The content of ``ablation.json``; runs not reached yet are ``pending``."""
    pending = {t: dict.fromkeys(TASK_METRICS[t]) for t in TASKS}
    return {
        "config_file": os.path.abspath(args.config_file),
        "seeds": list(args.seeds),
        "overrides": list(args.opts),
        "variants": [
            {
                "name": v.name,
                "overrides": list(v.overrides),
                "runs": [
                    records.get((v.name, r.seed))
                    or {
                        "seed": r.seed,
                        "status": "pending",
                        "output_dir": str(r.folder),
                        "attempts": 0,
                        "wall_time_s": None,
                        "error": None,
                        "dataset": None,
                        **pending,
                    }  # fmt: skip
                    for r in runs
                    if r.variant == v
                ],
            }
            for v in variants
        ],
    }


if __name__ == "__main__":
    run_tool(main, prog="ablate.py")
