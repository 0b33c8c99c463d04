"""Nothing a local run starts listens beyond loopback: the listening sockets of a real `segpipe ingest`
process tree (multi-threaded DirectRunner, then multi-processing with a worker process) are watched
while it runs, and every one must be bound to 127.0.0.0/8 or ::1.

Without `beam_options.bind_local_beam_servers_to_loopback` the multi-threaded ingest alone shows five
servers on `::` (the external worker pool, and control, data, state and logging of the worker handler);
with it, ten sockets on 127.0.0.1 and ::1 (gRPC binds both for `localhost`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from components import beam_options
from tests.support.sockets import is_loopback, watch_listening

REPOSITORY = Path(__file__).resolve().parents[3]

# Two ingests in one process (one TensorFlow import): the default multi-threaded DirectRunner, then the
# multi-processing one, whose worker processes are part of the watched tree.
DRIVER = textwrap.dedent("""
    import sys
    from pipeline.cli import main
    data, out = sys.argv[1:3]
    for mode, workers in (("multi_threading", 2), ("multi_processing", 1)):
        code = main(["ingest", "--format", "voc", "--data-dir", data, "--out", f"{out}/{mode}",
                     f"--beam-arg=--direct_running_mode={mode}", f"--beam-arg=--direct_num_workers={workers}"])
        assert code == 0, code
""")


def test_a_real_ingest_listens_on_loopback_only(tmp_path):
    from components.core import sample_data

    sample_data.write_voc_dataset(tmp_path / "data", num_images=6, image_size=(32, 32), seed=0)
    process = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path / "data"), str(tmp_path / "out")],
                               cwd=REPOSITORY, env={"PYTHONPATH": str(REPOSITORY), "PATH": "/usr/bin:/bin",
                                                    "HOME": str(tmp_path)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with watch_listening(process.pid) as listening:
            stderr = process.communicate(timeout=300)[1]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert (tmp_path / "out" / "multi_processing" / "ingestion_report.json").is_file()
    assert listening, "no listening socket seen: the watch missed Beam's servers"
    beyond = sorted(entry for entry in listening if not is_loopback(entry[1]))
    assert not beyond, f"listening beyond loopback (pid, address, port): {beyond}"


@pytest.mark.parametrize("address, expected", [
    ("[::]:0", "localhost:0"), ("0.0.0.0:8080", "localhost:8080"), ("localhost:0", "localhost:0"),
    ("127.0.0.1:5000", "127.0.0.1:5000"), ("[::1]:0", "[::1]:0")])
def test_any_interface_addresses_become_loopback(address, expected):
    assert beam_options.loopback_address(address) == expected
    assert is_loopback("::ffff:127.0.0.1") and is_loopback("::1") and not is_loopback("::")


def test_only_direct_runs_are_local():
    assert beam_options.is_local_runner([]) and beam_options.is_local_runner(["--runner=DirectRunner"])
    assert not beam_options.is_local_runner(["--runner=DataflowRunner"])
    assert not beam_options.is_local_runner(["--runner", "DataflowRunner"])
