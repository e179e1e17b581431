"""A process killed while writing eval_results.json leaves the old file or none (RELIABILITY 20).

Mirrors tests/engine/test_checkpointer.py's killed save: a child process writes the results and
is SIGKILLed by an audit hook at the moment its temporary file is complete but not yet renamed
(an in-place writer never renames, so the child would not be killed and the test fails).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ovvision.evaluation import save_eval_results

OLD = {"bbox": {"AP": 12.5, "AP50-novel": None, "num_images": 3}}


def _save_and_get_killed(output_dir: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from ovvision.evaluation import save_eval_results

        def kill_before_the_rename(event, args):
            if event == "os.rename" and "eval_results.json" in str(args[0]):
                os.kill(os.getpid(), signal.SIGKILL)

        sys.addaudithook(kill_before_the_rename)
        big = {{f"AP-class{{i}}": float(i) for i in range(20000)}}
        save_eval_results({{"bbox": big, "segm": big}}, {output_dir!r})
        """
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)


@pytest.mark.parametrize("had_results", [True, False], ids=["old_file", "no_file"])
def test_process_killed_mid_write_leaves_the_old_results_or_none(tmp_path, had_results):
    if had_results:
        save_eval_results(OLD, tmp_path)
    proc = _save_and_get_killed(str(tmp_path))
    assert proc.returncode == -9, proc.stderr.decode()
    leftovers = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert leftovers, "the killed write should have been writing a temporary file"
    assert os.path.getsize(tmp_path / leftovers[0]) > 20000  # it was killed with the data written
    path = tmp_path / "eval_results.json"
    if had_results:
        assert json.loads(path.read_text()) == OLD
    else:
        assert not path.exists()
