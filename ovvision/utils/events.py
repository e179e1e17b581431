"""Training metrics: an ``EventStorage`` the loop fills, and writers that print or save it."""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections import defaultdict
from typing import Any

import torch
from fvcore.common.history_buffer import HistoryBuffer

_CURRENT_STORAGE_STACK: list[EventStorage] = []


def get_event_storage() -> EventStorage:
    """The storage of the innermost running ``with EventStorage():`` block."""
    if not _CURRENT_STORAGE_STACK:
        raise RuntimeError("get_event_storage() must be called inside a 'with EventStorage(...)'")
    return _CURRENT_STORAGE_STACK[-1]


def current_event_storage() -> EventStorage | None:
    """The storage of the innermost running ``with EventStorage():`` block, or None outside one
    (a model run outside the trainer)."""
    return _CURRENT_STORAGE_STACK[-1] if _CURRENT_STORAGE_STACK else None


class EventStorage:
    """Scalars recorded per iteration, with their histories for smoothing.

    Args:
        start_iter: iteration number of the first step.
    """

    def __init__(self, start_iter: int = 0):
        self._history: dict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: dict[str, bool] = {}
        self._latest: dict[str, tuple[float, int]] = {}
        self.iter = start_iter

    def put_scalar(
        self, name: str, value: float | torch.Tensor, smoothing_hint: bool = True
    ) -> None:
        """Record ``value`` for ``name`` at the current iteration.

        Args:
            smoothing_hint: whether writers should print a windowed median rather than the
                latest value (True for noisy values such as losses).
        """
        value = float(value.detach().item() if isinstance(value, torch.Tensor) else value)
        self._history[name].update(value, self.iter)
        self._latest[name] = (value, self.iter)
        self._smoothing_hints.setdefault(name, smoothing_hint)

    def put_scalars(self, smoothing_hint: bool = True, **kwargs: float) -> None:
        for k, v in kwargs.items():
            self.put_scalar(k, v, smoothing_hint=smoothing_hint)

    def history(self, name: str) -> HistoryBuffer:
        if name not in self._history:
            raise KeyError(f"No history metric available for '{name}'")
        return self._history[name]

    def histories(self) -> dict[str, HistoryBuffer]:
        return dict(self._history)

    def latest(self) -> dict[str, tuple[float, int]]:
        """``{name: (latest value, iteration it was recorded at)}``."""
        return dict(self._latest)

    def latest_with_smoothing_hint(self, window_size: int = 20) -> dict[str, tuple[float, int]]:
        """Like :meth:`latest`, but values with a smoothing hint are windowed medians."""
        out = {}
        for name, (value, it) in self._latest.items():
            if self._smoothing_hints[name]:
                value = self._history[name].median(window_size)
            out[name] = (value, it)
        return out

    def step(self) -> None:
        """Advance the iteration counter (called by the trainer after each step)."""
        self.iter += 1

    def __enter__(self) -> EventStorage:
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert _CURRENT_STORAGE_STACK[-1] is self
        _CURRENT_STORAGE_STACK.pop()


class EventWriter:
    """Something that writes the storage's latest values somewhere."""

    def write(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class JSONWriter(EventWriter):
    """Append one JSON object per logged iteration to a file (``metrics.jsonl``)."""

    def __init__(self, json_file: str, window_size: int = 20):
        self._file = open(json_file, "a", encoding="utf-8")  # noqa: SIM115 (kept open for appends)
        self._window_size = window_size
        self._last_write = -1

    def write(self) -> None:
        storage = get_event_storage()
        by_iter: dict[int, dict[str, float]] = defaultdict(dict)
        for k, (v, it) in storage.latest_with_smoothing_hint(self._window_size).items():
            if it > self._last_write:
                by_iter[it][k] = v
        for it in sorted(by_iter):
            self._file.write(json.dumps({"iteration": it, **by_iter[it]}, sort_keys=True) + "\n")
        if by_iter:
            self._last_write = max(by_iter)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class TensorboardWriter(EventWriter):
    """Write scalars as TensorBoard events (needs the ``tensorboard`` package)."""

    def __init__(self, log_dir: str, window_size: int = 20):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir)
        self._window_size = window_size
        self._last_write = -1

    def write(self) -> None:
        storage = get_event_storage()
        newest = self._last_write
        for k, (v, it) in storage.latest_with_smoothing_hint(self._window_size).items():
            if it > self._last_write:
                self._writer.add_scalar(k, v, it)
                newest = max(newest, it)
        self._last_write = newest

    def close(self) -> None:
        self._writer.close()


class CommonMetricPrinter(EventWriter):
    """Print a progress line: bar, percentage, ETA, losses, learning rate, timing, memory."""

    def __init__(self, max_iter: int, window_size: int = 20, bar_width: int = 20):
        self.logger = logging.getLogger("ovvision.progress")
        self._max_iter = max_iter
        self._window_size = window_size
        self._bar_width = bar_width

    def _eta(self, storage: EventStorage) -> str | None:
        try:
            remaining = max(self._max_iter - storage.iter - 1, 0)  # 0 once training has ended
            seconds = storage.history("time").median(1000) * remaining
        except KeyError:
            return None
        return str(datetime.timedelta(seconds=int(seconds)))

    def progress_line(self, storage: EventStorage) -> str:
        """The text of one progress line for the storage's current iteration."""
        done = min(storage.iter + 1, self._max_iter)
        frac = done / max(self._max_iter, 1)
        filled = int(round(frac * self._bar_width))
        parts = [
            f"iter {done}/{self._max_iter} [{'#' * filled}{'.' * (self._bar_width - filled)}]"
            f" {100 * frac:3.0f}%"
        ]
        eta = self._eta(storage)
        if eta is not None:
            parts.append(f"eta {eta}")
        latest = storage.latest_with_smoothing_hint(self._window_size)
        losses = {k: v for k, (v, _) in latest.items() if "loss" in k}
        parts += [f"{k} {v:.4g}" for k, v in sorted(losses.items())]
        for key, label in (("lr", "lr"), ("time", "time"), ("data_time", "data")):
            if key in latest:
                parts.append(f"{label} {latest[key][0]:.4g}")
        if torch.cuda.is_available():
            parts.append(f"max_mem {torch.cuda.max_memory_allocated() / 2**20:.0f}M")
        return "  ".join(parts)

    def write(self) -> None:
        self.logger.info(self.progress_line(get_event_storage()))
