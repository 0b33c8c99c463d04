"""`segpipe predict` on every model format a run produces: a pushed folder (checked against its manifest), the
SavedModel inside it and each of the three `.tflite` files, on real VOC photos (masks at each photo's own
size, overlays), with per-image errors (corrupt file, an image above the pixel limit) that leave the other
images going through, and one-line refusals of what is not a model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components import artifacts
from components.core import push_manifest
from components.pusher.push import push
from pipeline.cli import main

VOC_PHOTO = "voc_sample/VOCdevkit/VOC2012/JPEGImages/2011_000006.jpg"  # 500 x 375


@pytest.fixture(scope="module")
def pushed_folder(tiny_tflite_export, tmp_path_factory):
    serving = os.path.join(tiny_tflite_export["model"], artifacts.SERVING_MODEL_DIR)
    folder, _ = push(serving, tiny_tflite_export["dir"], str(tmp_path_factory.mktemp("serving_model")),
                     evaluator_metrics={}, source={})
    return Path(folder)


def _predict(capsys, model: Path, out: Path, *inputs: Path, overlay: Path | None = None) -> tuple[int, dict, str]:
    argv = ["predict", "--model", str(model), "--out", str(out), *map(str, inputs)]
    status = main(argv + (["--overlay", str(overlay)] if overlay else []))
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if captured.out.strip() else {}, captured.err


@pytest.mark.parametrize("model", ["pushed", *(f"tflite/{name}" for name in artifacts.TFLITE_FILES.values())])
def test_a_real_photo_gets_a_mask_at_its_own_size_from_every_format(shared_data, pushed_folder, tmp_path, capsys,
                                                                    model):
    photo = shared_data / VOC_PHOTO
    model_path = pushed_folder if model == "pushed" else pushed_folder / model
    status, summary, _ = _predict(capsys, model_path, tmp_path / "masks", photo, overlay=tmp_path / "overlays")
    assert status == 0 and summary["written"] == 1
    assert summary["format"] == ("saved_model" if model == "pushed" else "tflite")
    mask = Image.open(tmp_path / "masks" / "2011_000006.png")
    assert mask.mode == "P" and mask.size == (500, 375)
    assert set(np.unique(np.asarray(mask))) <= set(range(21))
    overlay = Image.open(tmp_path / "overlays" / "2011_000006.png")
    assert overlay.mode == "RGB" and overlay.size == (500, 375)
    if model != "pushed":  # float32 TFLite and the SavedModel predict the same classes (to rounding)
        _predict(capsys, pushed_folder, tmp_path / "reference", photo)
        reference = np.asarray(Image.open(tmp_path / "reference" / "2011_000006.png"))
        agreement = (np.asarray(mask) == reference).mean()
        assert agreement > (0.99 if "float32" in model else 0.5), agreement


def test_bad_images_are_listed_with_their_reason_and_the_others_go_through(pushed_folder, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(images / "good.png")
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    Image.new("L", (5000, 3000)).save(images / "bomb.png")  # 15 M pixels: above the 12.6 M default limit
    status, summary, err = _predict(capsys, pushed_folder, tmp_path / "masks", images)
    assert status == 1 and summary["images"] == 3 and summary["written"] == 1
    reasons = {Path(failure["file"]).name: failure["reason"] for failure in summary["failed"]}
    assert set(reasons) == {"corrupt.jpg", "bomb.png"}
    assert "15000000 pixels, more than the model's limit" in reasons["bomb.png"]
    assert (tmp_path / "masks" / "good.png").is_file() and "2 of 3 images failed" in err


def test_a_tampered_push_and_things_that_are_not_models_are_refused_in_one_line(pushed_folder, tmp_path, capsys):
    tampered = tmp_path / "tampered"
    shutil.copytree(pushed_folder, tampered)
    (tampered / artifacts.MODEL_INFO_FILE).write_text("{}")
    text = tmp_path / "model.txt"
    text.write_text("x")
    lonely = tmp_path / "lonely.tflite"
    shutil.copy(pushed_folder / push_manifest.TFLITE_DIR / artifacts.TFLITE_FILES["int8"], lonely)
    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    expected = {
        tampered: f"{tampered}: differs from its manifest.json: {artifacts.MODEL_INFO_FILE}: sha256 or size differs "
                  "from the manifest",
        text: f"{text}: not a model (pass a pushed folder, a SavedModel folder or a .tflite file)",
        lonely: f"{lonely}: no {artifacts.TFLITE_METADATA_FILE} beside it",
    }
    for model, message in expected.items():
        status, _, err = _predict(capsys, model, tmp_path / "out", image)
        assert status != 0 and err.strip().startswith(f"segpipe: {message}"), err
        assert len(err.strip().splitlines()) == 1
