"""Mistakes a user can make on the command line: each is one `segpipe:` line naming the folder, file or
value at fault, with exit code 2 (usage and dataset errors) and a traceback only with `--verbose`.

Most cases call `main()` in-process (its exit code and stderr are what the console script returns and
prints); one case runs the real console entry point in a subprocess, so that nothing between `main()`
and the shell (a traceback printed at exit, another exit code) goes unseen.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.core import sample_data
from pipeline.cli import build_parser, main

REPOSITORY = Path(__file__).resolve().parents[3]

VOC_EXPECTED = ("not a PASCAL VOC 2012 folder: expected VOCdevkit/VOC2012, VOC2012 or the VOC2012 folder itself, "
                "holding JPEGImages/ and ImageSets/Segmentation/")


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("voc")
    sample_data.write_voc_dataset(out, num_images=6, image_size=(16, 16), seed=3)
    return out


def _error_line(capsys) -> str:
    """The whole of stderr, which must be exactly one line."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_a_missing_data_dir_is_one_line_and_exit_2_in_a_real_process(tmp_path):
    missing = tmp_path / "nope"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "ingest", "--format", "voc", "--data-dir", str(missing),
         "--out", str(tmp_path / "out")],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(REPOSITORY), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"segpipe: {missing}: dataset folder not found\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["ingest", "run"])
def test_dataset_folder_errors_are_one_line_naming_the_folder(command, voc_dir, tmp_path, capsys):
    def call(data_dir: Path, *extra: str) -> int:
        if command == "ingest":
            return main(["ingest", "--format", "voc", "--data-dir", str(data_dir), "--out", str(tmp_path / "out"),
                         *extra])
        return main(["run", "--data-dir", str(data_dir), "--output", str(tmp_path / "out"), *extra])

    assert call(tmp_path / "nope") == 2
    assert _error_line(capsys) == f"segpipe: {tmp_path / 'nope'}: dataset folder not found"

    (tmp_path / "photos").mkdir()
    assert call(tmp_path / "photos") == 2
    assert _error_line(capsys) == f"segpipe: {tmp_path / 'photos'}: {VOC_EXPECTED}"

    broken = tmp_path / "no_lists"
    shutil.copytree(voc_dir, broken)
    shutil.rmtree(broken / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation")
    assert call(broken) == 2
    assert _error_line(capsys) == (
        f"segpipe: {broken / 'VOCdevkit' / 'VOC2012' / 'ImageSets' / 'Segmentation'}: folder of split lists not "
        "found (a PASCAL VOC 2012 folder holds JPEGImages/ and ImageSets/Segmentation/)")

    lists = voc_dir / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    if command == "ingest":
        assert call(voc_dir, "--splits", "train,trian") == 2
        assert _error_line(capsys) == (
            f"segpipe: {lists / 'trian.txt'}: split list file not found (available lists: train, trainval, val)")
    else:
        assert call(voc_dir, "--set", "data.splits=[train,trian]") == 2
        assert _error_line(capsys) == (
            f"segpipe: {lists / 'trian.txt'}: split list file not found (available lists: train, trainval, val); "
            "it is the run's evaluation split (data.splits)")
    assert not (tmp_path / "out").exists()


def test_a_missing_cityscapes_split_folder_and_an_invalid_split_name(tmp_path, capsys):
    data = tmp_path / "data"
    sample_data.write_cityscapes_dataset(data, num_images=3, image_size=(16, 32), seed=1)
    shutil.rmtree(data / "leftImg8bit" / "train")
    assert main(["ingest", "--format", "cityscapes", "--data-dir", str(data), "--out", str(tmp_path / "out"),
                 "--splits", "train,val"]) == 2
    assert _error_line(capsys) == (
        f"segpipe: {data / 'leftImg8bit' / 'train'}: split folder not found (available splits: val)")
    shutil.rmtree(data / "gtFine")
    assert main(["ingest", "--format", "cityscapes", "--data-dir", str(data), "--out", str(tmp_path / "out")]) == 2
    assert _error_line(capsys) == (
        f"segpipe: {data / 'gtFine'}: folder not found (a Cityscapes folder holds leftImg8bit/ and gtFine/)")
    with pytest.raises(SystemExit) as exit_:
        main(["ingest", "--format", "cityscapes", "--data-dir", str(data), "--out", str(tmp_path / "out"),
              "--splits", "../val"])
    assert exit_.value.code == 2
    assert "invalid split name '../val': use letters, digits, '_' and '-' only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_without_splits_ingest_takes_the_default_splits_found_and_says_which(shared_data, tmp_path, capsys):
    data = shared_data / "cityscapes_sample"
    assert main(["ingest", "--format", "cityscapes", "--data-dir", str(data), "--out", str(tmp_path / "out"),
                 "--beam-arg=--direct_running_mode=in_memory"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert list(report["splits"]) == ["val"] and report["splits"]["val"]["written"] == 1
    reason = (f"{data / 'leftImg8bit' / 'train'} not found (no splits were named, so only the default splits "
              "found are ingested)")
    assert report["skipped_splits"] == [{"split": "train", "reason": reason}]
    assert f"ingestion: no splits named: ingesting val from {data}; train: {data / 'leftImg8bit' / 'train'} not found" \
        in captured.err

    empty = tmp_path / "empty"
    (empty / "leftImg8bit" / "test").mkdir(parents=True)
    (empty / "gtFine").mkdir()
    assert main(["ingest", "--format", "cityscapes", "--data-dir", str(empty), "--out", str(tmp_path / "o2")]) == 2
    assert _error_line(capsys) == (f"segpipe: {empty / 'leftImg8bit'}: none of the default splits train, val found "
                                   "(available splits: test); name the splits to ingest")


def test_run_refuses_an_empty_evaluation_split_before_anything_runs(shared_data, tmp_path, capsys):
    data = shared_data / "voc_sample"
    assert main(["run", "--data-dir", str(data), "--output", str(tmp_path / "out")]) == 2
    val = data / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt"
    assert _error_line(capsys) == (f"segpipe: {val}: the evaluation split 'val' is empty: nothing is listed "
                                   "(data.splits names the training and evaluation splits)")
    assert not (tmp_path / "out").exists()


def test_verbose_is_accepted_after_the_subcommand_and_shows_the_traceback(tmp_path, capsys):
    assert main(["ingest", "--verbose", "--format", "voc", "--data-dir", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "IngestionError" in err
    assert err.rstrip().splitlines()[-1] == f"segpipe: {tmp_path / 'nope'}: dataset folder not found"
    assert build_parser().parse_args(["--verbose", "score", "--pred", "a", "--gt", "b", "--format", "voc"]).verbose
    assert build_parser().parse_args(["run", "--verbose"]).verbose
    assert not build_parser().parse_args(["run"]).verbose


def test_every_option_of_every_subcommand_has_help_saying_its_default():
    parser = build_parser()
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for name, sub in subparsers.choices.items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"segpipe {name} {action.option_strings}: no help text"
            rendered = formatter._expand_help(action)
            assert action.required or "default" in rendered, f"segpipe {name} {action.option_strings}: {rendered!r}"


def _copy_with_a_truncated_jpeg(voc_dir, tmp_path):
    """A copy of the VOC dataset whose first training image is cut to 200 bytes: (data folder, image, its id)."""
    data = tmp_path / "data"
    shutil.copytree(voc_dir, data)
    root = data / "VOCdevkit" / "VOC2012"
    bad_id = (root / "ImageSets" / "Segmentation" / "train.txt").read_text().split()[0]
    image = root / "JPEGImages" / f"{bad_id}.jpg"
    image.write_bytes(image.read_bytes()[:200])
    return data, image, bad_id


def test_strict_ingest_stops_at_a_truncated_jpeg_without_traceback_and_marks_the_folder(voc_dir, tmp_path, capsys):
    data, image, bad_id = _copy_with_a_truncated_jpeg(voc_dir, tmp_path)
    assert main(["ingest", "--format", "voc", "--data-dir", str(data), "--out", str(tmp_path / "out"),
                 "--strict"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = err.rstrip().splitlines()[-1]
    assert last.startswith(f"segpipe: {image}: corrupt or truncated image (")
    assert last.endswith(f") (split 'train', id '{bad_id}')")
    assert (tmp_path / "out" / "INGESTION_FAILED.json").is_file()
    assert not (tmp_path / "out" / "ingestion_report.json").exists()
    assert not list((tmp_path / "out").rglob("data_tfrecord-*"))


def test_compile_requires_the_dataset_uri(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compile", "--out", str(tmp_path / "spec.yaml")])
    assert exit_.value.code == 2
    assert "the following arguments are required: --data-dir" in capsys.readouterr().err
    assert not (tmp_path / "spec.yaml").exists()


def test_a_failing_step_ends_with_a_summary_of_what_finished_and_what_did_not(voc_dir, tmp_path, capsys):
    data, image, bad_id = _copy_with_a_truncated_jpeg(voc_dir, tmp_path)
    out = tmp_path / "out"
    assert main(["run", "--data-dir", str(data), "--output", str(out), "--set", "data.strict=true"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    summary = err[err.index("segpipe: "):].rstrip().splitlines()
    assert summary[0].startswith("segpipe: step SegmentationExampleGen of pipeline 'segpipe-voc-unet' failed: "
                                 f"{image}: corrupt or truncated image (")
    assert summary[0].endswith(f") (split 'train', id '{bad_id}')")
    assert summary[1:] == [
        "  finished:     ImportSchemaGen",
        "  failed:       SegmentationExampleGen",
        "  not run:      latest_blessed_model_resolver, StatisticsGen, Transform, ExampleValidator, Trainer, "
        "Evaluator, TFLiteExport, EvaluationReport, Pusher, MlflowTracker",
        f"  outputs so far: {out / 'tfx'}; run again with --verbose for the traceback"]


def _unused_loopback_uri() -> str:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_an_unreachable_mlflow_server_stops_the_run_before_it_starts(tmp_path, capsys):
    import time

    uri = _unused_loopback_uri()
    started = time.monotonic()
    assert main(["run", "--output", str(tmp_path / "out"), "--set", f"runtime.mlflow_tracking_uri={uri}"]) == 2
    assert time.monotonic() - started < 10
    assert _error_line(capsys) == (f"segpipe: configuration error: runtime.mlflow_tracking_uri {uri}: MLflow server "
                                   "unreachable (Connection refused); nothing was run")
    assert not (tmp_path / "out").exists()


def test_an_unreachable_server_named_by_mlflow_tracking_uri_stops_the_run_too(tmp_path, capsys, monkeypatch):
    uri = _unused_loopback_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["run", "--output", str(tmp_path / "out")]) == 2
    assert _error_line(capsys) == (f"segpipe: configuration error: MLFLOW_TRACKING_URI {uri}: MLflow server "
                                   "unreachable (Connection refused); nothing was run")
    assert not (tmp_path / "out").exists()


def test_an_unexpected_error_is_one_line_pointing_at_verbose(monkeypatch, capsys):
    import pipeline.cli as cli

    def broken(args):
        raise KeyError("model\nweights")

    monkeypatch.setitem(cli.COMMANDS, "score", broken)
    assert main(["score", "--pred", "p", "--gt", "g", "--format", "voc"]) == 1
    assert _error_line(capsys) == "segpipe: KeyError: 'model\\nweights' (--verbose shows the traceback)"
