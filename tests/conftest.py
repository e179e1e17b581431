"""Session-wide checks and fixtures shared by every test folder."""

from __future__ import annotations

import glob
import importlib
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _extension_problem() -> str | None:
    """Why this test run cannot go on with the install it finds, or None if it can.

    setup.py builds ``ovvision._C`` whenever ovvision/csrc has C++ sources, unless
    ``OVVISION_NO_EXT=1``; the same rule decides here whether the extension must load. Skipping
    the op tests of a broken build would report it green.
    """
    from ovvision.ops import has_ops
    from ovvision.ops._extension import extension_disabled

    if extension_disabled():
        if has_ops():
            return "OVVISION_NO_EXT=1 but ovvision._C was loaded: the fallback run would test it"
        return None
    if has_ops() or not glob.glob(
        os.path.join(REPO, "ovvision", "csrc", "**", "*.cpp"), recursive=True
    ):
        return None
    try:
        importlib.import_module("ovvision._C")
        reason = "it imports, yet registers no operators"
    except ImportError as e:
        reason = str(e)
    return (
        f"ovvision._C did not load ({reason}) although ovvision/csrc has kernels to build: "
        "run `make install` to rebuild it, or set OVVISION_NO_EXT=1 to test the PyTorch "
        "fallbacks only"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires_ops: tests ovvision.ops (the kernels; the references under OVVISION_NO_EXT=1)",
    )
    problem = _extension_problem()
    if problem is not None:
        raise pytest.UsageError(problem)
