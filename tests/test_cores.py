"""fork_map: the same results on every core as one by one, and no fork where forking is unsafe."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from pipeline.cores import fork_map


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
