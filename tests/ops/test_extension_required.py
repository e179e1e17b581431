"""A test run refuses an install whose extension does not load, unless OVVISION_NO_EXT=1 says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Plugins loaded before tests/conftest.py: the extension as never built, or as built for another
# torch (the import fails the way an ABI mismatch does).
HIDE = {
    "never_built": "import sys\nsys.modules['ovvision._C'] = None\n",
    "broken": (
        "import sys\nfrom tests.ops.run_ops import _BrokenExtension\n"
        "sys.meta_path.insert(0, _BrokenExtension())\n"
    ),
}


def _pytest_run(tmp_path: Path, hide: str | None, no_ext: bool) -> subprocess.CompletedProcess:
    """Run one op test file in a fresh pytest, with the extension hidden as ``hide`` says."""
    env = {k: v for k, v in os.environ.items() if k != "OVVISION_NO_EXT"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO)])
    if no_ext:
        env["OVVISION_NO_EXT"] = "1"
    plugin = []
    if hide is not None:
        (tmp_path / "hide_extension.py").write_text(HIDE[hide])
        plugin = ["-p", "hide_extension"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugin, "-q", "-p", "no:cacheprovider", "-rs"]
        + ["tests/ops/test_paste_masks.py", "-k", "matches_torchvision_in_float64"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("hide", ["never_built", "broken"])
def test_a_run_whose_extension_does_not_load_fails(tmp_path, hide):
    done = _pytest_run(tmp_path, hide, no_ext=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "ovvision._C did not load" in output and "OVVISION_NO_EXT=1" in output, output
    assert "passed" not in output and "skipped" not in output


def test_with_no_ext_the_op_tests_run_on_the_fallback(tmp_path):
    done = _pytest_run(tmp_path, None, no_ext=True)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 passed" in output and "skipped" not in output, output
