"""Many AOIs on a Dask cluster reached through its TCP address: each runs, one failing stops none."""

from __future__ import annotations

import re

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from smallaoi import write_small_aoi

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    # Threads, not processes: the test stays light, and the address is a real TCP scheduler.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                                  scheduler_port=0, dashboard_address=None) as c:
        yield c


def _registry(folder: Path) -> Path:
    write_small_aoi(folder)
    feature = json.loads((folder / "testvillage.geojson").read_text())
    feature["properties"]["parameters"] = {"noise_k": -1}  # valid AOI file, invalid parameters: fails on its worker
    (folder / "brokenvillage.geojson").write_text(json.dumps(feature))
    return folder


@pytest.mark.slow
def test_every_aoi_runs_on_the_cluster_and_a_failing_one_is_reported(cluster, tmp_path, capsys):
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    aoi_dir = _registry(tmp_path / "aoi")
    code = main(["detect", "--all", "--scheduler", cluster.scheduler_address, "--aoi-dir", str(aoi_dir),
                 "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data"), "--no-figures"])
    out, err = capsys.readouterr()
    assert code == 7  # one AOI failed, the batch says so
    lines = dict(line.split("\t", 1) for line in out.strip().splitlines())
    assert lines["testvillage"].startswith("ok\t") and lines["brokenvillage"].startswith("FAILED\t")
    assert "noise_k must be > 0" in lines["brokenvillage"]
    run = Path(lines["testvillage"].split("\t")[1])
    assert (run / "manifest.json").is_file() and (run / "report.json").is_file()
    # per stage, each line with the seconds since the AOI's run began
    assert re.search(r"testvillage: (\[\d+\.\d s\] )?(using the embedded SIMULATED demo|no scenes given)", err), err
    # The client's own line for each AOI, logged when its result arrives. (The worker's last published
    # record, "testvillage: done", may reach the client after the batch has ended: events travel apart
    # from results, and on a loaded machine it was missing once.)
    assert "/2] testvillage done in" in err and "brokenvillage FAILED" in err
    assert err.strip().splitlines()[-1].startswith("burnscan: error: 1 of 2 AOIs failed (brokenvillage)")


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    import pipeline.batch

    monkeypatch.setattr(pipeline.batch, "CONNECT_TIMEOUT_S", 1)  # nothing listens there: waiting longer changes nothing
    aoi_dir = _registry(tmp_path / "aoi")
    code = main(["detect", "--all", "--scheduler", "tcp://127.0.0.1:9", "--aoi-dir", str(aoi_dir),
                 "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data")])
    _, err = capsys.readouterr()
    assert code == 5 and "cannot reach the Dask scheduler" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_all_and_a_name_together_are_refused(capsys):
    assert main(["detect", "ogota", "--all"]) == 5
    assert "--all runs every AOI" in capsys.readouterr().err
