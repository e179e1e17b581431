"""Benchmark ovvision's compiled ops against torchvision on the same inputs, side by side.

Each case runs ovvision and the torchvision reference alternately on the same inputs, after a
warm-up, and reports the median wall time of each and their ratio. The forward ROIAlign case is
also compared with an estimate of its arithmetic and compulsory memory traffic, measured against
this machine's matmul and copy throughput, to show how far the kernel is from a physical limit.

    python tools/benchmark_ops.py --json output/benchmark_ops.json [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torchvision
from torchvision.models.detection.roi_heads import paste_masks_in_image

from ovvision import ops

# The case: a stride-8 map of two 800 x 1216 images, 1000 ROIs pooled to 7 x 7.
BATCH, CHANNELS, HEIGHT, WIDTH = 2, 256, 100, 152
NUM_ROIS, POOLED, SAMPLING, SCALE = 1000, 7, 2, 0.125
NUM_MASKS, MASK_SIZE, IMAGE = 100, 28, (800, 1333)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time_ms(fn: Callable[[], object], device: str) -> float:
    return _times_ms(fn, device)[0]


def _times_ms(fn: Callable[[], object], device: str) -> tuple[float, float]:
    """(wall, process CPU) milliseconds of one call; CPU time sums all threads."""
    _sync(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return (time.perf_counter() - start) * 1e3, (time.process_time() - start_cpu) * 1e3


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def side_by_side(
    ours: Callable[[], object],
    reference: Callable[[], object],
    device: str,
    repeats: int,
    warmup: int,
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall times (ms) of both, alternating which runs first on every repetition.

    Returns the case's result and, aside, the median process CPU times, which other programs
    running on the machine disturb much less than wall times.
    """
    for _ in range(warmup):
        ours(), reference()
    wall: dict[str, list[float]] = {"ovvision": [], "reference": []}
    cpu: dict[str, list[float]] = {"ovvision": [], "reference": []}
    for rep in range(repeats):
        order = ("ovvision", "reference") if rep % 2 == 0 else ("reference", "ovvision")
        for name in order:
            w, c = _times_ms(ours if name == "ovvision" else reference, device)
            wall[name].append(w)
            cpu[name].append(c)
    ours_ms, ref_ms = statistics.median(wall["ovvision"]), statistics.median(wall["reference"])
    result = {
        "ovvision_ms": round(ours_ms, 3),
        "reference_ms": round(ref_ms, 3),
        "speedup": round(ref_ms / ours_ms, 2),
    }
    return result, {name: round(statistics.median(v), 3) for name, v in cpu.items()}


def roi_inputs(device: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature map (N, C, H, W) and (K, 5) ROIs: sides log-uniform in 16..512 image pixels."""
    x = torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH, generator=generator)
    image_wh = torch.tensor([WIDTH, HEIGHT]) / SCALE
    center = torch.rand(NUM_ROIS, 2, generator=generator) * image_wh
    size = torch.exp(
        torch.empty(NUM_ROIS, 2).uniform_(math.log(16), math.log(512), generator=generator)
    )
    corners = torch.cat([center - size / 2, center + size / 2], 1).clamp(min=0)
    corners = torch.minimum(corners, image_wh.repeat(2))
    index = torch.randint(0, BATCH, (NUM_ROIS, 1), generator=generator).float()
    return x.to(device), torch.cat([index, corners], 1).to(device)


def mask_inputs(device: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, 28, 28) mask probabilities and boxes centred in the image, sides 20..400 pixels."""
    masks = torch.rand(NUM_MASKS, 1, MASK_SIZE, MASK_SIZE, generator=generator)
    center = torch.rand(NUM_MASKS, 2, generator=generator) * torch.tensor([IMAGE[1], IMAGE[0]])
    size = torch.exp(
        torch.empty(NUM_MASKS, 2).uniform_(math.log(20), math.log(400), generator=generator)
    )
    return masks.to(device), torch.cat([center - size / 2, center + size / 2], 1).to(device)


def build_cases(device: str) -> dict[str, tuple[Callable, Callable, int | None]]:
    """name -> (ovvision call, torchvision call, CPU threads or None)."""
    g = torch.Generator().manual_seed(0)
    x, rois = roi_inputs(device, g)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn(NUM_ROIS, CHANNELS, POOLED, POOLED, generator=g).to(device)
    masks, boxes = mask_inputs(device, g)
    args = (SCALE, POOLED, POOLED, SAMPLING, True)
    backward_args = (SCALE, POOLED, POOLED, BATCH, CHANNELS, HEIGHT, WIDTH, SAMPLING, True)

    def forward(t: torch.Tensor) -> Callable:
        return lambda: torch.ops.ovvision.roi_align(t, rois, *args)

    def tv_forward(t: torch.Tensor) -> Callable:
        return lambda: torchvision.ops.roi_align(t, rois, POOLED, SCALE, SAMPLING, True)

    ours_bwd = lambda: torch.ops.ovvision._roi_align_backward(grad, rois, *backward_args)  # noqa: E731
    tv_bwd = lambda: torch.ops.torchvision._roi_align_backward(grad, rois, *backward_args)  # noqa: E731
    ours_paste = lambda: ops.paste_masks(masks, boxes, IMAGE)  # noqa: E731
    tv_paste = lambda: paste_masks_in_image(masks, boxes, IMAGE)  # noqa: E731
    if device == "cuda":
        return {
            "roi_align_fwd": (forward(x), tv_forward(x), None),
            "roi_align_bwd": (ours_bwd, tv_bwd, None),
            "roi_align_fwd_channels_last": (forward(x_cl), tv_forward(x_cl), None),
            "paste_masks": (ours_paste, tv_paste, None),
        }
    return {
        "roi_align_fwd_1t": (forward(x), tv_forward(x), 1),
        "roi_align_fwd_2t": (forward(x), tv_forward(x), 2),
        "roi_align_bwd_1t": (ours_bwd, tv_bwd, 1),
        "roi_align_bwd_2t": (ours_bwd, tv_bwd, 2),
        "roi_align_fwd_channels_last_2t": (forward(x_cl), tv_forward(x_cl), 2),
        "paste_masks_2t": (ours_paste, tv_paste, 2),
    }


def machine_throughput(device: str, threads: int | None) -> dict[str, float]:
    """Best float32 matmul GFLOP/s and large-copy GB/s (read + write) seen in a few tries."""
    with _threads(threads):
        n = 2048
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        src = torch.randn(64 << 20, device=device)
        dst = torch.empty_like(src)
        a @ b, dst.copy_(src)
        matmul_ms = min(_time_ms(lambda: a @ b, device) for _ in range(5))
        copy_ms = min(_time_ms(lambda: dst.copy_(src), device) for _ in range(5))
    return {
        "matmul_gflops": round(2 * n**3 / matmul_ms / 1e6, 1),
        "copy_gbytes_per_s": round(2 * src.numel() * 4 / copy_ms / 1e6, 1),
    }


def forward_work_estimate(device: str, measured: dict, threads: int | None, key: str) -> dict:
    """Arithmetic and compulsory memory work of the forward case against what was achieved."""
    samples = SAMPLING * SAMPLING
    fmas = NUM_ROIS * CHANNELS * POOLED * POOLED * samples * 4  # 4 bilinear taps per sample
    in_bytes = BATCH * CHANNELS * HEIGHT * WIDTH * 4
    out_bytes = NUM_ROIS * CHANNELS * POOLED * POOLED * 4
    machine = machine_throughput(device, threads)
    compute_ms = 2 * fmas / machine["matmul_gflops"] / 1e6
    memory_ms = (in_bytes + out_bytes) / machine["copy_gbytes_per_s"] / 1e6
    bound_ms = max(compute_ms, memory_ms)
    achieved_ms = measured[key]["ovvision_ms"]
    return {
        "case": key,
        "multiply_adds": fmas,
        "compulsory_bytes": in_bytes + out_bytes,
        **machine,
        "compute_bound_ms": round(compute_ms, 3),
        "memory_bound_ms": round(memory_ms, 3),
        "lower_bound_ms": round(bound_ms, 3),
        "ovvision_ms": achieved_ms,
        "ovvision_over_bound": round(achieved_ms / bound_ms, 2),
        "reference_over_bound": round(measured[key]["reference_ms"] / bound_ms, 2),
        "achieved_gflops": round(2 * fmas / achieved_ms / 1e6, 1),
        "achieved_gbytes_per_s": round((in_bytes + out_bytes) / achieved_ms / 1e6, 1),
    }


def matmul_scaling() -> dict[str, float]:
    """Median time of torch's own (MKL) matmul at 1 and 2 threads: whether the machine let
    anything scale with threads while the benchmark ran."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    times = {}
    for n in (1, 2):
        with _threads(n):
            a @ b
            times[f"{n}t"] = round(
                statistics.median(_time_ms(lambda: a @ b, "cpu") for _ in range(9)), 3
            )
    return times


def fresh_output_ms(device: str, threads: int | None) -> float:
    """Allocating and filling a fresh forward-sized output: a floor for any op returning one."""
    with _threads(threads):
        shape = (NUM_ROIS, CHANNELS, POOLED, POOLED)
        torch.empty(shape, device=device).fill_(1.0)
        return round(
            min(
                _time_ms(lambda: torch.empty(shape, device=device).fill_(1.0), device)
                for _ in range(5)
            ),
            3,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, type=Path, help="where to write the results")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=11, help="timed runs per op and case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per op and case")
    parser.add_argument("--cases", nargs="+", help="run only these cases (default: all)")
    args = parser.parse_args()
    if not ops.has_ops():
        print(
            "ovvision._C is not built (run `make install`): nothing to benchmark", file=sys.stderr
        )
        return 1
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available", file=sys.stderr)
        return 1
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    cpu_times: dict[str, dict] = {}
    for name, (ours, reference, threads) in build_cases(args.device).items():
        if args.cases and name not in args.cases:
            continue
        with _threads(threads):
            results[name], cpu_times[name] = side_by_side(
                ours, reference, args.device, args.repeats, args.warmup
            )
        print(
            f"{name:34s} ovvision {results[name]['ovvision_ms']:9.2f} ms   "
            f"torchvision {results[name]['reference_ms']:9.2f} ms   "
            f"x{results[name]['speedup']:.2f}",
            flush=True,
        )
    key = "roi_align_fwd" if args.device == "cuda" else "roi_align_fwd_1t"
    threads = None if args.device == "cuda" else 1
    estimate = {}
    if key in results:
        estimate = forward_work_estimate(args.device, results, threads, key)
        estimate["fresh_output_alloc_fill_ms"] = fresh_output_ms(args.device, threads)
        print("forward work estimate:", json.dumps(estimate, indent=1))
    results["meta"] = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "cpu_isa": ops.cpu_isa(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "statistic": "median wall time; ovvision and torchvision alternate on the same inputs",
        "backward": "the _roi_align_backward operators called directly (no autograd overhead)",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "process_cpu_ms": cpu_times,
        "forward_work_estimate": estimate,
    }
    if args.device == "cpu":
        results["meta"]["matmul_ms_by_threads"] = matmul_scaling()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
