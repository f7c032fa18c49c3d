"""A profiled run says where its time goes, stage by stage (``burnscan bench-perf --profile``): each stage's
time on the threads that ran it, ended by the next stage of the same thread, never by another thread's."""

from __future__ import annotations

import logging
import threading
import time

from pipeline.bench.perf import profile_lines
from pipeline.progress import mark_stage, profiled, stage, stage_done

_LOG = logging.getLogger("test")


def _busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_each_stage_gets_the_time_until_the_next_one_on_its_thread():
    with profiled() as clock:
        stage("loading 5 scenes onto 1104 x 1098 px", logger=_LOG)
        time.sleep(0.2)  # waiting: wall time, no CPU
        stage("co-registration: 4 scenes onto scene 1", logger=_LOG)
        _busy(0.2)
    stages = clock.stages
    assert set(stages) == {"loading N scenes onto N x N px", "co-registration"}
    assert stages["loading N scenes onto N x N px"].wall_s >= 0.2 > stages["loading N scenes onto N x N px"].cpu_s + 0.1
    assert stages["co-registration"].cpu_s >= 0.19 and stages["co-registration"].wall_s >= stages["co-registration"].cpu_s - 0.01


def test_threads_keep_their_own_stages_and_a_finished_chunk_stops_its_clock():
    def chunk() -> None:
        stage("threshold and dating: 2 dates", logger=_LOG)
        time.sleep(0.15)
        stage_done()

    with profiled() as clock:
        mark_stage("seams: merging")
        workers = [threading.Thread(target=chunk) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        time.sleep(0.5)  # after the chunks: counted to the main thread's stage, not to theirs
    dating = clock.stages["threshold and dating"]
    assert dating.entries == 2
    assert 0.3 <= dating.wall_s < 0.8  # the chunks' own 0.15 s each, not the 0.5 s after them (that would be >= 1.3)
    assert clock.stages["seams"].wall_s >= 0.5


def test_nothing_is_timed_outside_a_profiled_block():
    with profiled() as clock:
        pass
    stage("co-registration: after the block", logger=_LOG)
    assert clock.stages == {}


def test_the_profile_table_names_each_stage_with_its_share_of_the_run():
    rows = [{"size": 512, "method": "floor", "wall_s": 0.5, "cpu_s": 0.6, "peak_mb": 50.0},
            {"size": 512, "method": "pipeline", "wall_s": 4.0, "cpu_s": 7.0, "peak_mb": 900.0,
             "stages": {"co-registration": {"wall_s": 1.0, "cpu_s": 1.5, "read_mb": 2.0, "written_mb": 0.0, "entries": 1}}}]
    lines = profile_lines(rows)
    assert "cpu/wall 1.75" in lines[0] and "decode floor 0.50 s" in lines[0]
    assert lines[2].split() == ["co-registration", "1.00", "1.50", "25%", "2.0", "0.0", "1"]
