"""`segpipe ingest` on Beam's Dask runner (a local `dask.distributed` cluster of two worker processes on
127.0.0.1) writes exactly what DirectRunner writes: the same shard files byte for byte, the same report
(counts per split, ids, a quarantined pair), with every server on loopback and no process left behind.

Both ingests run in this process (`pipeline.cli.main`, as `segpipe ingest`), which is watched with its
children (the Dask cluster's processes) while they run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
import pytest

from components import dask_cluster
from tests.support.sockets import is_loopback, watch_listening


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_dask_ingestion_writes_what_direct_runner_writes(tmp_path, capfd):
    from components.core import sample_data
    from components.core.datasets import voc

    summary = sample_data.write_voc_dataset(tmp_path / "data", num_images=8, image_size=(32, 32), seed=3)
    bad_id = summary["splits"]["train"][1]
    Path(voc.mask_path(summary["root"], bad_id)).write_bytes(b"not a png")  # quarantined on both runners
    from pipeline.cli import main

    with watch_listening() as listening:
        for name, beam_args in (("direct", []), ("dask", [f"--beam-arg=--runner={dask_cluster.DASK_RUNNER}",
                                                             "--beam-arg=--dask_local_workers=2"])):
            assert main(["ingest", "--format", "voc", "--data-dir", str(tmp_path / "data"),
                         "--out", str(tmp_path / "out" / name), *beam_args]) == 0
    log = capfd.readouterr().err
    assert "Dask: started a local cluster of 2 worker processes" in log and "Dask: closed the local cluster" in log

    direct, dask = _files(tmp_path / "out" / "direct"), _files(tmp_path / "out" / "dask")
    assert sorted(dask) == sorted(direct) == ["ingestion_report.json", "train/data_tfrecord-00000-of-00001.gz",
                                              "val/data_tfrecord-00000-of-00001.gz"]
    assert dask == direct  # byte for byte: same examples, same order, same report
    report = json.loads(dask["ingestion_report.json"])
    assert report["reconciled"]
    assert {split: (counts["listed"], counts["written"], counts["quarantined"])
            for split, counts in report["splits"].items()} == {"train": (6, 5, 1), "val": (2, 2, 0)}
    assert [(record["id"], record["file"]) for record in report["quarantine"]] == \
        [(bad_id, voc.mask_path(summary["root"], bad_id))]

    # The cluster: the scheduler in this process, nannies and worker processes below it, all on loopback.
    beyond = sorted(entry for entry in listening if not is_loopback(entry[1]))
    assert not beyond, f"listening beyond loopback (pid, address, port): {beyond}"
    cluster_pids = {pid for pid, _, _ in listening} - {os.getpid()}
    assert len(cluster_pids) >= 2, f"expected the worker processes' servers, saw {sorted(listening)}"
    assert not [pid for pid in cluster_pids if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE], "a Dask process outlived the ingest"


def test_dask_runner_arguments():
    assert dask_cluster.is_dask_runner([f"--runner={dask_cluster.DASK_RUNNER}"])
    assert dask_cluster.is_dask_runner(["--runner", dask_cluster.DASK_RUNNER])
    assert not dask_cluster.is_dask_runner(["--runner=DaskRunner"])  # Beam itself refuses the short name
    assert not dask_cluster.is_dask_runner([f"--runner={dask_cluster.DASK_RUNNER}", "--runner=DirectRunner"])
    assert not dask_cluster.is_dask_runner([])
    with dask_cluster.local_dask_cluster(["--direct_num_workers=2"], default_partitions=3) as args:
        assert args == ["--direct_num_workers=2"]  # not Dask: unchanged, nothing started
    given = [f"--runner={dask_cluster.DASK_RUNNER}", "--dask_client_address=tcp://10.0.0.5:8786", "--dask_partition_size=4"]
    with dask_cluster.local_dask_cluster(given, default_partitions=3) as args:
        assert args == given  # a scheduler and a partitioning given: used as they are, nothing started
    with dask_cluster.local_dask_cluster(given[:2] + ["--dask_local_workers=4"], default_partitions=3) as args:
        assert args == given[:2] + ["--dask_npartitions=3"]  # segpipe's own option never reaches Beam
    with pytest.raises(ValueError, match="--dask_local_workers: expected a number of worker processes >= 1, got 'x'"):
        with dask_cluster.local_dask_cluster([f"--runner={dask_cluster.DASK_RUNNER}", "--dask_local_workers=x"]):
            pass
