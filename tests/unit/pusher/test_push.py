"""The push of a blessed model on real tiny artifacts (a U-Net trained by `run_fn`, its TFLite models from the
TFLiteExport executor): a new versioned folder per push holding the SavedModel, the accepted TFLite files and a
manifest whose hashes match the files; refused TFLite models stay out; an unblessed model is not pushed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from components import artifacts
from components.core import push_manifest
from components.pusher.push import next_version, push

SOURCE = {"pipeline_name": "segpipe-test", "mlflow": {"tracking_uri": "file:///tmp/x", "experiment": "e"}}


@pytest.fixture(scope="module")
def pushed(tiny_tflite_export, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving_model")
    serving = os.path.join(tiny_tflite_export["model"], artifacts.SERVING_MODEL_DIR)
    first = push(serving, tiny_tflite_export["dir"], str(base), evaluator_metrics={"miou": 0.5}, source=SOURCE)
    second = push(serving, tiny_tflite_export["dir"], str(base), evaluator_metrics={"miou": 0.5}, source=SOURCE)
    return {"base": base, "first": first, "second": second, "tflite": tiny_tflite_export}


def test_each_push_gets_its_own_version_folder_and_leaves_no_partial_one(pushed):
    (first, _), (second, _) = pushed["first"], pushed["second"]
    assert first != second and int(Path(second).name) > int(Path(first).name)
    assert sorted(path.name for path in pushed["base"].iterdir()) == sorted([Path(first).name, Path(second).name])


def test_the_folder_holds_the_savedmodel_the_three_tflite_files_and_a_manifest_matching_them(pushed):
    folder, manifest = Path(pushed["first"][0]), pushed["first"][1]
    assert push_manifest.verify_folder(folder) == []
    assert push_manifest.read_manifest(folder) == manifest
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert "saved_model.pb" in listed and artifacts.MODEL_INFO_FILE in listed
    for variant, name in artifacts.TFLITE_FILES.items():
        path = folder / push_manifest.TFLITE_DIR / name
        assert listed[f"tflite/{name}"]["bytes"] == path.stat().st_size > 0
        assert manifest["formats"][f"tflite_{variant}"]["path"] == f"tflite/{name}"
    # The TFLite files are told apart by their tensor types, and the manifest says which is which.
    for variant, expected in (("float32", np.float32), ("dynamic_range", np.float32), ("int8", np.int8)):
        interpreter = tf.lite.Interpreter(model_path=str(folder / manifest["formats"][f"tflite_{variant}"]["path"]))
        assert interpreter.get_input_details()[0]["dtype"] == expected
        assert manifest["formats"][f"tflite_{variant}"]["input"]["dtype"] == np.dtype(expected).name
    assert tf.saved_model.load(str(folder)).signatures[artifacts.SERVE_IMAGES] is not None


def test_the_manifest_carries_metrics_label_map_input_spec_quantization_and_source(pushed):
    manifest, document = pushed["first"][1], pushed["tflite"]["json"]
    assert manifest["formats"]["saved_model"]["metrics"] == {"miou": 0.5}
    assert manifest["formats"]["saved_model"]["miou"] == document["reference"]["miou"]
    assert manifest["formats"]["tflite_int8"]["miou"] == document["variants"]["int8"]["miou"]
    assert manifest["formats"]["tflite_int8"]["input"]["quantization"]["scale"] > 0  # the input's quantization
    assert manifest["label_map"]["name"] == "pascal_voc" and len(manifest["label_map"]["classes"]) == 21
    assert manifest["input"]["image_size"] == [32, 32] and len(manifest["input"]["normalization_mean"]) == 3
    assert manifest["source"] == SOURCE and manifest["refused"] == {}


def test_a_changed_file_is_found_by_the_manifest_check(pushed, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(pushed["second"][0], copy)
    (copy / push_manifest.TFLITE_DIR / artifacts.TFLITE_FILES["int8"]).write_bytes(b"tampered")
    (copy / "extra.txt").write_text("x")
    assert push_manifest.verify_folder(copy) == [
        "extra.txt: not listed in the manifest",
        f"tflite/{artifacts.TFLITE_FILES['int8']}: sha256 or size differs from the manifest"]


def test_a_refused_tflite_model_is_not_pushed_and_the_manifest_says_why(tiny_tflite_export, tmp_path):
    tflite_dir = tmp_path / "tflite"
    shutil.copytree(tiny_tflite_export["dir"], tflite_dir)
    document = json.loads((tflite_dir / artifacts.TFLITE_METADATA_FILE).read_text())
    name = artifacts.TFLITE_FILES["int8"]
    (tflite_dir / artifacts.TFLITE_REFUSED_DIR).mkdir()
    (tflite_dir / name).rename(tflite_dir / artifacts.TFLITE_REFUSED_DIR / name)
    document["variants"]["int8"].update(status="refused", file=f"{artifacts.TFLITE_REFUSED_DIR}/{name}", miou_drop=0.2)
    (tflite_dir / artifacts.TFLITE_METADATA_FILE).write_text(json.dumps(document))
    serving = os.path.join(tiny_tflite_export["model"], artifacts.SERVING_MODEL_DIR)
    folder, manifest = push(serving, str(tflite_dir), str(tmp_path / "base"), evaluator_metrics={}, source={})
    assert not (Path(folder) / push_manifest.TFLITE_DIR / name).exists()
    assert "tflite_int8" not in manifest["formats"] and "0.2 below" in manifest["refused"]["tflite_int8"]["reason"]
    assert push_manifest.verify_folder(Path(folder)) == []


def test_versions_move_on_past_existing_folders(tmp_path):
    (tmp_path / "100").mkdir()
    (tmp_path / "101").mkdir()
    assert next_version(str(tmp_path), now=100.7) == "102"
    assert next_version(str(tmp_path), now=200) == "200"


def test_an_unblessed_model_is_not_pushed(tmp_path):
    from tfx.types import standard_artifacts

    from components.pusher.component import SegmentationPusher

    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", 0)
    inputs = {"model": [standard_artifacts.Model()], "model_blessing": [blessing],
              "tflite_models": [artifacts.TFLiteModels()], "evaluation": [standard_artifacts.ModelEvaluation()]}
    pushed_model = standard_artifacts.PushedModel()
    pushed_model.uri = str(tmp_path / "pushed")
    SegmentationPusher.EXECUTOR_SPEC.executor_class().Do(
        inputs, {"pushed_model": [pushed_model]}, {"base_directory": str(tmp_path / "base"), "run_context": "{}"})
    assert pushed_model.get_int_custom_property("pushed") == 0
    assert not (tmp_path / "base").exists()
