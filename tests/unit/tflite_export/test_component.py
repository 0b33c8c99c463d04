"""The TFLiteExport component on real tiny artifacts: a U-Net trained a few steps by `run_fn`, exported with the
transform graph, converted to the three TFLite variants, each scored on the val split like the Evaluator scores;
and the refusal policy on those measurements."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from components import artifacts
from components.core import tflite
from components.core.label_maps import load_label_map
from components.tflite_export.component import REFERENCE, write_tflite_models
from tests.support.tiny_artifacts import IMAGE_SIZE, NUM_IMAGES


@pytest.fixture
def trained_model(tiny_trained_model):
    return tiny_trained_model


@pytest.fixture
def exported(tiny_tflite_export):
    return tiny_tflite_export


def test_every_variant_is_written_with_its_scores_size_and_latency(exported):
    document, folder = exported["json"], exported["dir"]
    assert list(document["variants"]) == list(tflite.VARIANTS)
    for variant, report in document["variants"].items():
        assert report["status"] == "accepted" and report["file"] == artifacts.TFLITE_FILES[variant]
        assert os.path.getsize(os.path.join(folder, report["file"])) == report["size_bytes"] > 0
        assert report["latency_ms"] > 0 and 0.0 <= report["miou"] <= 1.0
        assert set(report["per_class_iou"]) == set(load_label_map("pascal_voc").class_names)
        assert {"mean_dice", "hd95", "per_class_hd95", "input", "output"} <= set(report)
        assert exported["artifact"].get_float_custom_property(f"miou_{variant}") == pytest.approx(report["miou"])
    assert exported["artifact"].get_string_custom_property("refused") == ""
    assert not os.path.exists(os.path.join(folder, artifacts.TFLITE_REFUSED_DIR))
    assert document["reference"]["latency_ms"] > 0
    assert document["evaluation"] == {"split": "val", "images": document["evaluation"]["images"]}
    assert 0 < document["evaluation"]["images"] < NUM_IMAGES


def test_float_tflite_scores_the_saved_models_miou_and_the_int8_file_has_int8_tensors(exported):
    variants, reference = exported["json"]["variants"], exported["json"]["reference"]
    assert variants[tflite.FLOAT32]["miou"] == pytest.approx(reference["miou"], abs=1e-4)
    assert variants[tflite.FLOAT32]["input"]["dtype"] == variants[tflite.DYNAMIC_RANGE]["input"]["dtype"] == "float32"
    int8 = variants[tflite.INT8]
    assert int8["input"]["dtype"] == int8["output"]["dtype"] == "int8"
    assert int8["input"]["shape"] == [1, *IMAGE_SIZE, 3] and int8["output"]["shape"] == [1, *IMAGE_SIZE, 21]
    assert int8["input"]["quantization"]["scale"] > 0
    # The dynamic-range file keeps float I/O but stores its convolution weights in int8.
    interpreter = tf.lite.Interpreter(model_path=os.path.join(exported["dir"], variants[tflite.DYNAMIC_RANGE]["file"]))
    assert any(np.dtype(tensor["dtype"]) == np.int8 for tensor in interpreter.get_tensor_details())


def test_the_side_json_carries_the_transforms_normalisation_and_the_classes(exported, tiny_artifacts):
    import tensorflow_transform as tft

    document = exported["json"]
    transform_output = tft.TFTransformOutput(str(tiny_artifacts.transform_graph))
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(str(tiny_artifacts.examples / "Split-val" / "*")),
                                      compression_type="GZIP")
    transformed = transform_output.transform_features_layer()(
        tf.io.parse_example(tf.stack(list(records.take(1))), transform_output.raw_feature_spec()))
    np.testing.assert_allclose(document["input"]["normalization_mean"], transformed["normalization_mean"][0], rtol=1e-6)
    np.testing.assert_allclose(document["input"]["normalization_std"], transformed["normalization_std"][0], rtol=1e-6)
    assert document["input"]["resize"] == "fit" and len(document["input"]["padding_pixel"]) == 3
    label_map = load_label_map("pascal_voc")
    assert [entry["name"] for entry in document["classes"]] == list(label_map.class_names)
    assert [tuple(entry["color"]) for entry in document["classes"]] == list(label_map.colors)
    calibration = document["calibration"]
    assert calibration["split"] == "train" and calibration["examples"] == 3
    assert set(calibration["classes_covered"]) <= set(calibration["classes_in_split"])


def test_a_variant_beyond_the_tolerance_is_refused_logged_and_kept_out_of_the_pushable_files(
        exported, tiny_artifacts, tmp_path, caplog):
    """The measurements of the exported model, with the int8 mIoU lowered by 2 points past the 1-point limit."""
    from components.tflite_export.component import Measurements

    document = exported["json"]
    label_map = load_label_map("pascal_voc")
    contents = {variant: open(os.path.join(exported["dir"], report["file"]), "rb").read()
                for variant, report in document["variants"].items()}
    reference_miou = document["reference"]["miou"]
    results = {name: _result(label_map, miou) for name, miou in
               ((REFERENCE, reference_miou), (tflite.FLOAT32, reference_miou),
                (tflite.DYNAMIC_RANGE, reference_miou - 0.005), (tflite.INT8, reference_miou - 0.02))}
    measured = Measurements(image_size=IMAGE_SIZE, contents=contents, results=results,
                            latencies_ms={name: 1.0 for name in results},
                            tensors={variant: {} for variant in contents}, calibration={},
                            normalization={"normalization_mean": [0.0] * 3, "normalization_std": [1.0] * 3,
                                           "pixel_mean": [0.0] * 3})
    with caplog.at_level(logging.WARNING):
        refused = write_tflite_models(measured, label_map, "val", "fit", 0.01, str(tmp_path))
    assert [refused["variants"][variant]["status"] for variant in tflite.VARIANTS] == \
        ["accepted", "accepted", "refused"]
    assert refused["variants"][tflite.INT8]["file"] == \
        f"{artifacts.TFLITE_REFUSED_DIR}/{artifacts.TFLITE_FILES['int8']}"
    assert refused["variants"][tflite.INT8]["miou_drop"] == pytest.approx(0.02)
    assert sorted(name for name in os.listdir(tmp_path) if name.endswith(".tflite")) == \
        sorted(artifacts.TFLITE_FILES[variant] for variant in (tflite.FLOAT32, tflite.DYNAMIC_RANGE))
    assert os.path.exists(tmp_path / artifacts.TFLITE_REFUSED_DIR / artifacts.TFLITE_FILES["int8"])
    assert "TFLite int8 REFUSED" in caplog.text and "export.max_miou_drop 0.0100" in caplog.text
    assert json.loads((tmp_path / artifacts.TFLITE_METADATA_FILE).read_text()) == refused


def _result(label_map, miou):
    from components.core.evaluation_result import EvaluationResult

    names = label_map.class_names
    return EvaluationResult(miou=miou, per_class_iou={name: None for name in names}, pixel_accuracy=None,
                            mean_dice=None, per_class_dice={name: None for name in names}, class_names=names)
