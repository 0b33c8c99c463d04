"""The segpipe command line: sample data, clear configuration errors, ingestion, quiet logging."""

from __future__ import annotations

import json
import logging
import os

import pytest

from pipeline.cli import main


def test_sample_data_writes_the_voc_layout(tmp_path, capsys):
    assert main(["sample-data", "--format", "voc", "--out", str(tmp_path), "--images", "6", "--size", "32x24"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["trainval"] == 6
    assert len(list((tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))) == 6


def test_a_bad_override_stops_the_run_before_anything_starts(tmp_path, capsys):
    assert main(["run", "--output", str(tmp_path / "out"), "--set", "training.epochz=3"]) == 2
    assert "unknown key 'training.epochz'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_bad_size_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["sample-data", "--format", "voc", "--out", str(tmp_path), "--size", "big"])
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err


def test_ingest_writes_records_and_a_reconciled_report(tmp_path, capsys):
    main(["sample-data", "--format", "cityscapes", "--out", str(tmp_path / "data"), "--images", "4"])
    capsys.readouterr()
    assert main(["ingest", "--format", "cityscapes", "--data-dir", str(tmp_path / "data"),
                 "--out", str(tmp_path / "records")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reconciled"] is True
    assert report["totals"]["listed"] == report["totals"]["written"] == 4
    assert (tmp_path / "records" / "ingestion_report.json").is_file()
    # Shards are runs of up to 100 listed pairs whatever the runner: train's 3 pairs are one shard. Beam
    # options pass through (one in-memory worker instead of the multi-threaded default): the same bytes.
    assert [path.name for path in (tmp_path / "records" / "train").glob("data_tfrecord-*")] == \
        ["data_tfrecord-00000-of-00001.gz"]
    assert main(["ingest", "--format", "cityscapes", "--data-dir", str(tmp_path / "data"), "--out",
                 str(tmp_path / "one"), "--beam-arg=--direct_running_mode=in_memory",
                 "--beam-arg=--direct_num_workers=1"]) == 0
    for split in ("train", "val"):
        assert (tmp_path / "one" / split / "data_tfrecord-00000-of-00001.gz").read_bytes() == \
            (tmp_path / "records" / split / "data_tfrecord-00000-of-00001.gz").read_bytes()
    assert json.loads(capsys.readouterr().out)["splits"]["train"]["written"] == 3
    assert len(list((tmp_path / "one" / "train").glob("data_tfrecord-*"))) == 1


def test_quiet_by_default_and_verbose_on_request():
    from components.log_setup import configure_logging

    configure_logging(verbose=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    quiet_handler = logging.getLogger().handlers[0]
    noisy = logging.LogRecord("absl", logging.INFO, __file__, 1, "Using deployment config: x", None, None)
    progress = logging.LogRecord("absl", logging.INFO, __file__, 1, "Component %s is running.", ("Trainer",), None)
    harmless = logging.LogRecord("absl", logging.WARNING, __file__, 1, "ArtifactQuery.property_predicate is not supported.", None, None)
    reordered = logging.LogRecord("absl", logging.WARNING, __file__, 1, "Changing the value of option deterministic from True to False.", None, None)
    assert not quiet_handler.filter(noisy)
    assert quiet_handler.filter(progress)
    assert not quiet_handler.filter(harmless)
    assert not quiet_handler.filter(reordered)
    # tf.Transform's analyzer warning as DirectRunner forwards it from a worker process (make run showed ten).
    forwarded = logging.LogRecord(
        "root", logging.WARNING, __file__, 1,
        "Worker: severity: WARN timestamp {   seconds: 1796326923   nanos: 944487571 } message: \"Analyzer "
        "(pixel_sums/temporary_analyzer_output/PlaceholderWithDefault:0) node\\'s cache key varies on repeated "
        "tracing. This warning is safe to ignore if you either specify `name` for all analyzers\"", None, None)
    assert not quiet_handler.filter(forwarded)
    configure_logging(verbose=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert logging.getLogger().handlers[0].filter(noisy)


@pytest.mark.parametrize("quiet, shown", [("1", b"after\n"), ("0", b"native\nafter\n")])
def test_native_stderr_is_hidden_only_in_quiet_runs_and_only_within_the_block(quiet, shown):
    import subprocess
    import sys

    script = ("import os; from components import log_setup\n"
              "with log_setup.native_stderr_hidden():\n    os.write(2, b'native\\n')\n"
              "os.write(2, b'after\\n')\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True,
                               env={**os.environ, "SEGPIPE_QUIET": quiet})
    assert completed.stderr.endswith(shown) and (quiet == "0" or b"native" not in completed.stderr)
