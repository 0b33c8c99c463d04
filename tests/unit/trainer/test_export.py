"""The exported SavedModel's image-bytes signature: JPEG and PNG of any size in, masks at each image's own
size out, equal to the example signature's prediction mapped back by hand; the pixel limit; the model info."""

from __future__ import annotations

import io
from pathlib import Path
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from PIL import Image

from components import artifacts
from components.core import features
from components.core.config import ModelConfig
from components.core.label_maps import load_label_map
from components.core.metrics import prediction_at_image_size
from components.core.models.builder import build_model
from components.trainer.export import encoded_image_size, export_serving_model
from tests.support.tiny_artifacts import IMAGE_SIZE


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def exported(tiny_artifacts, tmp_path_factory):
    tf.keras.utils.set_random_seed(0)
    model = build_model(ModelConfig.from_dict({"image_size": list(IMAGE_SIZE), "unet": {"base_filters": 2, "depth": 2}}),
                        num_classes=21)
    export_dir = str(tmp_path_factory.mktemp("export") / "serving")
    export_serving_model(model, tft.TFTransformOutput(str(tiny_artifacts.transform_graph)), export_dir,
                         load_label_map("pascal_voc"), max_image_pixels=80 * 80)
    return export_dir


def test_image_sizes_come_from_jpeg_and_png_headers_and_other_formats_decoded():
    rng = np.random.default_rng(0)
    for fmt in ("JPEG", "PNG", "BMP"):
        image = rng.integers(0, 255, size=(37, 53, 3), dtype=np.uint8)
        assert encoded_image_size(tf.constant(_encoded(image, fmt))).numpy().tolist() == [37, 53], fmt


def test_images_of_any_size_get_masks_at_their_own_size(exported, tiny_artifacts):
    model = tf.saved_model.load(exported)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, size=(40, 24, 3), dtype=np.uint8), rng.integers(0, 255, size=(30, 50, 3), dtype=np.uint8)]
    served = model.signatures[artifacts.SERVE_IMAGES](images=tf.constant([_encoded(images[0], "PNG"),
                                                                           _encoded(images[1], "JPEG")]))
    assert served["image_size"].numpy().tolist() == [[40, 24], [30, 50]]
    class_ids, probabilities = served[features.CLASS_IDS].numpy(), served[features.PROBABILITIES].numpy()
    assert class_ids.shape == (2, 40, 50) and probabilities.shape == (2, 40, 50, 21)
    assert (class_ids[0, :, 24:] == 255).all() and (class_ids[1, 30:] == 255).all()
    np.testing.assert_allclose(probabilities[0, :, :24].sum(-1), 1.0, atol=1e-4)
    assert (probabilities[0, :, 24:] == 0).all()
    assert set(np.unique(class_ids[0, :, :24])) <= set(range(21))


def test_image_bytes_give_the_example_prediction_mapped_back_to_the_image(exported, tiny_artifacts):
    model = tf.saved_model.load(exported)
    files = tf.io.gfile.glob(str(tiny_artifacts.examples / "Split-val" / "*"))
    serialized = tf.stack(list(tf.data.TFRecordDataset(files, compression_type="GZIP").take(2)))
    parsed = tf.io.parse_example(serialized, {features.IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string)})
    by_examples = model.signatures[artifacts.SERVE_EXAMPLES](examples=serialized)
    by_images = model.signatures[artifacts.SERVE_IMAGES](images=parsed[features.IMAGE_ENCODED])
    for index, size in enumerate(by_images["image_size"].numpy()):
        expected = prediction_at_image_size(by_examples[features.CLASS_IDS].numpy()[index],
                                            by_examples[features.CONTENT_SIZE].numpy()[index], tuple(size))
        np.testing.assert_array_equal(by_images[features.CLASS_IDS].numpy()[index][:size[0], :size[1]], expected)


def test_an_image_over_the_pixel_limit_is_refused_naming_the_limit(exported):
    model = tf.saved_model.load(exported)
    large = _encoded(np.zeros((81, 80, 3), np.uint8), "PNG")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"export.max_image_pixels = 6400"):
        model.signatures[artifacts.SERVE_IMAGES](images=tf.constant([large]))


def test_the_model_info_says_how_to_read_the_output(exported):
    info = json.loads(open(f"{exported}/{artifacts.MODEL_INFO_FILE}").read())
    assert info["label_map"] == "pascal_voc" and len(info["class_names"]) == 21 == len(info["class_colors"])
    assert info["class_names"][0] == "background" and info["class_colors"][1] == [128, 0, 0]
    assert info["input_size"] == list(IMAGE_SIZE) and info["ignore_label"] == 255


def test_segpipe_predict_writes_masks_segpipe_score_reads_and_lists_unreadable_files(exported, tiny_artifacts,
                                                                                       tmp_path, capsys):
    from pipeline.cli import main

    voc = tiny_artifacts.examples.parent / "voc" / "VOCdevkit" / "VOC2012"
    images = tmp_path / "images"
    (images / "nested").mkdir(parents=True)
    ids = sorted(path.stem for path in (voc / "SegmentationClass").glob("*.png"))
    for image_id in ids:
        (images / f"{image_id}.jpg").write_bytes((voc / "JPEGImages" / f"{image_id}.jpg").read_bytes())
    Image.fromarray(np.zeros((20, 36, 3), np.uint8)).save(images / "nested" / "wide.png")
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "masks"

    assert main(["predict", "--model", exported, "--out", str(out), str(images)]) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["images"] == len(ids) + 2 and summary["written"] == len(ids) + 1
    assert [Path(failure["file"]).name for failure in summary["failed"]] == ["broken.jpg"]
    assert "1 of" in captured.err and "images failed" in captured.err
    wide = Image.open(out / "nested" / "wide.png")
    assert wide.mode == "P" and wide.size == (36, 20)
    assert set(np.unique(np.asarray(wide))) <= set(range(21))

    assert main(["score", "--pred", str(out), "--gt", str(voc / "SegmentationClass"), "--format", "voc",
                 "--no-hausdorff"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["num_images"] == len(ids) and 0.0 <= scores["miou"] <= 1.0


def test_segpipe_predict_refuses_a_folder_without_a_model_in_one_line(tmp_path, capsys):
    from pipeline.cli import main

    assert main(["predict", "--model", str(tmp_path), "--out", str(tmp_path / "out"), str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (f"segpipe: {tmp_path}: no saved_model.pb (pass a pushed "
                                               "serving_model/<version> folder, an exported SavedModel folder or "
                                               "a .tflite file)")
