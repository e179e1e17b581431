#!/usr/bin/env bash
# Every GPU figure of ovvision in one run (about 5 minutes on one H200; each step has a time limit
# so the whole stays under 8): builds ovvision._C with its CUDA kernels in place, runs the CUDA
# tests, tools/benchmark_ops.py --device cuda, and tools/benchmark_model.py --device cuda with
# bf16 autocast off and on, then writes one JSON with every result and each step's status.
#
#   tools/gpu_check.sh [OUT.json]          (default output/gpu_check.json)
#
# Environment: DEVICE=cuda (default) or cpu, which checks the plumbing on a machine without a GPU
# (no CUDA build; the CUDA tests skip); SIZE=full|tiny (benchmark_model.py --size); MODEL_ARGS and
# OPS_ARGS: extra arguments of the two benchmarks; STEPS: the steps to run (default all: build_cuda
# cuda_tests benchmark_ops benchmark_model_fp32 benchmark_model_bf16); PYTHON (default
# .venv/bin/python, else python3).
# A failed step is recorded (its exit status and the end of its log) and the others still run; the
# script exits non-zero when any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-output/gpu_check.json}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-full}
MODEL_ARGS=${MODEL_ARGS:-}
OPS_ARGS=${OPS_ARGS:-}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if [[ "$DEVICE" != cuda && "$DEVICE" != cpu ]]; then
  echo "gpu_check.sh: DEVICE must be cuda or cpu, got '$DEVICE'" >&2
  exit 2
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$(dirname "$OUT")"
: >"$WORK/steps.tsv"

STEPS=${STEPS:-build_cuda cuda_tests benchmark_ops benchmark_model_fp32 benchmark_model_bf16}

# step NAME LIMIT_S COMMAND...: run it with a time limit, log to $WORK/NAME.log, record the outcome
# (a step not in STEPS is left out).
step() {
  local name=$1 limit=$2
  shift 2
  [[ " $STEPS " == *" $name "* ]] || return 0
  echo "== $name: $*" >&2
  local start=$SECONDS
  timeout "$limit" "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >>"$WORK/steps.tsv"
  tail -n 3 "$WORK/$name.log" >&2
  return 0
}

if [[ "$DEVICE" == cuda ]]; then
  step build_cuda 300 env CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}" FORCE_CUDA=1 \
    TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-16}" \
    "$PYTHON" setup.py build_ext --inplace
fi
step cuda_tests 120 "$PYTHON" -m pytest tests/ops -m cuda -q -p no:cacheprovider \
  --junitxml="$WORK/cuda_tests.xml"
# shellcheck disable=SC2086  # the *_ARGS are word lists on purpose
step benchmark_ops 120 "$PYTHON" tools/benchmark_ops.py --device "$DEVICE" \
  --json "$WORK/benchmark_ops.json" $OPS_ARGS
if [[ "$DEVICE" == cuda ]]; then
  REPEATS=(--repeats 10 --warmup 3)
else
  REPEATS=()
fi
# shellcheck disable=SC2086
step benchmark_model_fp32 150 "$PYTHON" tools/benchmark_model.py --device "$DEVICE" \
  --size "$SIZE" "${REPEATS[@]}" --json "$WORK/benchmark_model_fp32.json" $MODEL_ARGS
# shellcheck disable=SC2086
step benchmark_model_bf16 150 "$PYTHON" tools/benchmark_model.py --device "$DEVICE" \
  --size "$SIZE" "${REPEATS[@]}" --amp bf16 --json "$WORK/benchmark_model_bf16.json" $MODEL_ARGS

"$PYTHON" - "$WORK" "$OUT" "$DEVICE" <<'EOF'
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

work, out, device = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
steps = {}
for line in (work / "steps.tsv").read_text().splitlines():
    name, rc, seconds = line.split("\t")
    log = (work / f"{name}.log").read_text(errors="replace").splitlines()
    steps[name] = {"rc": int(rc), "seconds": int(seconds), "log_tail": log[-15:]}
result = {"steps": steps}
junit = work / "cuda_tests.xml"
if junit.exists():
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    result["cuda_tests"] = counts
for name in ("benchmark_ops", "benchmark_model_fp32", "benchmark_model_bf16"):
    path = work / f"{name}.json"
    result[name] = json.loads(path.read_text()) if path.exists() else None
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
result["meta"] = {
    "device": device,
    "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    "commit": commit.strip() or None,
    "total_seconds": sum(s["seconds"] for s in steps.values()),
    "failed_steps": sorted(n for n, s in steps.items() if s["rc"] != 0),
}
out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
print(f"wrote {out}; failed steps: {result['meta']['failed_steps'] or 'none'}")
sys.exit(1 if result["meta"]["failed_steps"] else 0)
EOF
