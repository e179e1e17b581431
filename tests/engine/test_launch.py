"""launch()'s checks of the job's layout and the machines' rendezvous end with a clear error,
within the rendezvous timeout, instead of a hang or a job with the wrong shape."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest

from ovvision.engine import launch
from ovvision.engine.launch import LaunchError, rendezvous_timeout_from_env


def _never_called(*args: object) -> None:
    raise AssertionError("no worker may run when the launch is refused")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("gpus", "machines", "rank", "message"),
    [
        (1, 2, 2, "--machine-rank 2 is out of range for --num-machines 2"),
        (1, 2, -1, "--machine-rank -1 is out of range"),
        (0, 1, 0, "--num-gpus must be at least 1, got 0"),
        (1, 0, 0, "--num-machines must be at least 1, got 0"),
    ],
)
def test_a_bad_layout_is_refused_before_any_process_starts(gpus, machines, rank, message):
    with pytest.raises(LaunchError, match=message):
        launch(_never_called, gpus, num_machines=machines, machine_rank=rank,
               dist_url="tcp://127.0.0.1:1")  # fmt: skip


@pytest.mark.parametrize("url", ["auto", "tcp://127.0.0.1", "http://127.0.0.1:80", "127.0.0.1:5"])
def test_several_machines_need_a_tcp_url_with_a_port(url):
    with pytest.raises(LaunchError, match="--dist-url"):
        launch(_never_called, 1, num_machines=2, machine_rank=1, dist_url=url)


def test_an_unreachable_machine_zero_ends_within_the_rendezvous_timeout():
    url = f"tcp://127.0.0.1:{_free_port()}"  # nobody listens there
    start = time.monotonic()
    with pytest.raises(LaunchError, match=r"machine rank 0 was not reachable at --dist-url .* 2 s"):
        launch(_never_called, 1, num_machines=2, machine_rank=1, dist_url=url,
               rendezvous_timeout=timedelta(seconds=2))  # fmt: skip
    assert 2 <= time.monotonic() - start < 20


def _launch_in_threads(layouts: list[tuple[int, int, int]], url: str) -> list[str]:
    """Launch each (num_gpus, num_machines, machine_rank) in a thread; their errors, in order."""
    errors = [""] * len(layouts)

    def run(i: int, gpus: int, machines: int, rank: int) -> None:
        try:
            launch(_never_called, gpus, num_machines=machines, machine_rank=rank, dist_url=url,
                   backend="gloo", rendezvous_timeout=timedelta(seconds=3))  # fmt: skip
        except LaunchError as e:
            errors[i] = str(e)

    threads = [threading.Thread(target=run, args=(i, *lay)) for i, lay in enumerate(layouts)]
    threads[0].start()
    time.sleep(0.5)  # machine 0 serves the store before the others look for it
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a launch hung past the rendezvous timeout"
    return errors


def test_a_missing_machine_and_a_rank_taken_twice_are_named():
    url = f"tcp://127.0.0.1:{_free_port()}"
    # Machine ranks 0, 1 and 1 of a 3-machine job: rank 2 never comes, rank 1 comes twice.
    errors = _launch_in_threads([(1, 3, 0), (1, 3, 1), (1, 3, 1)], url)
    assert "machine rank(s) 2 did not join the job" in errors[0]
    taken = [e for e in errors[1:] if "--machine-rank 1 is already taken" in e]
    assert len(taken) == 1, errors
    # The rank 1 that got in hears machine 0's verdict.
    assert [e for e in errors[1:] if e not in taken] == [errors[0]]


def test_machines_that_disagree_on_the_layout_all_stop():
    url = f"tcp://127.0.0.1:{_free_port()}"
    errors = _launch_in_threads([(1, 2, 0), (2, 2, 1)], url)
    assert "machines disagree on --num-machines x --num-gpus" in errors[0]
    assert errors[1] == errors[0]


def test_machine_zero_refuses_a_port_in_use():
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        url = f"tcp://127.0.0.1:{busy.getsockname()[1]}"
        with pytest.raises(LaunchError, match="machine rank 0 cannot serve --dist-url"):
            launch(_never_called, 1, num_machines=2, machine_rank=0, dist_url=url,
                   rendezvous_timeout=timedelta(seconds=2))  # fmt: skip


def test_the_rendezvous_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("OVVISION_RENDEZVOUS_TIMEOUT", "7.5")
    assert rendezvous_timeout_from_env() == timedelta(seconds=7.5)
    monkeypatch.delenv("OVVISION_RENDEZVOUS_TIMEOUT")
    assert rendezvous_timeout_from_env() == timedelta(minutes=10)
    for bad in ("0", "-3", "ten", "nan"):
        monkeypatch.setenv("OVVISION_RENDEZVOUS_TIMEOUT", bad)
        with pytest.raises(LaunchError, match="OVVISION_RENDEZVOUS_TIMEOUT must be a positive"):
            rendezvous_timeout_from_env()
