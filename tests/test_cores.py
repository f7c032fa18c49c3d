"""fork_map and fork_soon: the same results on every core as one by one, and no fork where forking is unsafe."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest

from pipeline.cores import fork_map, fork_soon


@pytest.mark.forks
def test_children_read_the_parents_arrays_and_return_the_same_results():
    big = np.arange(2_000_000, dtype=np.float64).reshape(1000, 2000)
    pids = fork_map(lambda i: os.getpid(), 4, workers=2)
    sums = fork_map(lambda i: float(big[i::4].sum()), 4, workers=2)
    assert sums == [float(big[i::4].sum()) for i in range(4)]
    assert os.getpid() not in pids  # the work ran in children


def test_from_a_worker_thread_it_runs_here_with_the_same_results():
    out: dict[str, list] = {}
    worker = threading.Thread(target=lambda: out.update(pids=fork_map(lambda i: os.getpid(), 3, workers=2)))
    worker.start()
    worker.join()
    assert out["pids"] == [os.getpid()] * 3


def test_it_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("BURNSCAN_NO_FORK", "1")
    assert fork_map(lambda i: os.getpid(), 3) == [os.getpid()] * 3


# fork_soon: work started in one child while this process goes on, collected later.

@pytest.mark.forks
def test_work_started_soon_runs_in_a_child_and_comes_back_the_same():
    big = np.arange(2_000_000, dtype=np.float64).reshape(1000, 2000)
    pending = fork_soon(lambda i: (os.getpid(), float(big[i::3].sum())), 3)
    big[:] = 0  # the child drew on the arrays as they were when it started
    out = pending.result()
    assert [s for _, s in out] == [float(np.arange(2_000_000, dtype=np.float64).reshape(1000, 2000)[i::3].sum())
                                   for i in range(3)]
    assert {p for p, _ in out} != {os.getpid()}  # computed in a child
    assert pending.result() is out  # collected once
    assert multiprocessing.active_children() == []


def test_switched_off_it_computes_when_asked(monkeypatch):
    monkeypatch.setenv("BURNSCAN_NO_FORK", "1")
    calls = []
    pending = fork_soon(lambda i: calls.append(i) or i * i, 3)
    assert calls == []  # nothing yet: the work waits for the caller
    assert pending.result() == [0, 1, 4] and calls == [0, 1, 2]


@pytest.mark.forks
def test_an_error_in_the_child_is_raised_by_result():
    def task(i):
        if i == 1:
            raise ValueError("scene 1 has no red band")
        return i

    pending = fork_soon(task, 2)
    with pytest.raises(ValueError, match="scene 1 has no red band"):
        pending.result()
    assert multiprocessing.active_children() == []


@pytest.mark.forks
def test_cancel_stops_the_child_and_a_killed_child_leaves_the_work_to_this_process(tmp_path):
    def slow(i):
        (tmp_path / f"started-{os.getpid()}").touch()
        time.sleep(60)
        return i

    pending = fork_soon(slow, 1)
    waited = 0.0
    while not list(tmp_path.glob("started-*")) and waited < 30:
        time.sleep(0.05)
        waited += 0.05
    assert multiprocessing.active_children() != []
    pending.cancel()
    pending.cancel()  # twice is harmless
    assert multiprocessing.active_children() == []

    here = os.getpid()
    pending = fork_soon(lambda i: (os.getpid() == here or time.sleep(60), os.getpid(), i), 2)  # slow in the child only
    (child,) = multiprocessing.active_children()
    os.kill(child.pid, signal.SIGKILL)  # the out-of-memory killer, say
    child.join()
    assert pending.result() == [(True, here, 0), (True, here, 1)]  # done here instead


@pytest.mark.forks
def test_without_memory_files_or_a_fork_the_work_is_done_here_all_the_same(monkeypatch):
    import errno

    import pipeline.cores

    def refused(*args, **kwargs):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(pipeline.cores.os, "memfd_create", refused, raising=False)  # a sandbox: a temporary file then
    assert os.getpid() not in fork_soon(lambda i: os.getpid(), 2).result()  # still computed in a child

    def no_fork(self):
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.get_context("fork").Process, "start", no_fork)
    here = os.getpid()
    pending = fork_soon(lambda i: (os.getpid(), i), 2)
    assert multiprocessing.active_children() == []
    assert pending.result() == [(here, 0), (here, 1)]
