"""Running the scripts of tools/ from the checkout, as a user would."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from types import ModuleType

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_tool(args: list[str], env: dict[str, str], timeout: float) -> str:
    """Run ``python tools/<script> ...`` in the checkout; returns its output (stdout and stderr).

    Fails the calling test with the end of the output when the tool exits non-zero.
    """
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, f"{' '.join(args[:3])} failed:\n{proc.stdout[-4000:]}"
    return proc.stdout


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` as a module (its ``main`` and helpers, without running it)."""
    spec = importlib.util.spec_from_file_location(
        f"ovvision_tool_{name}", os.path.join(REPO, "tools", f"{name}.py")
    )
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a tool's dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
