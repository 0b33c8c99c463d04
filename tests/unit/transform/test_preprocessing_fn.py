"""`preprocessing_fn` through real tf.Transform analysis, on tiny generated VOC data and on the real samples
of `../shared/data`: shapes and dtypes, masks of class ids and the ignore label only, the aspect ratio
kept and the padding ignored, the statistics and class weights equal to numpy's on the same pixels, each
normalisation, and Transform's cache key following the preprocessing settings."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from components.core import features, preprocessing
from components.core.config import PipelineConfig
from components.transform.preprocessing import transform_custom_config
from tests.support.class_weights import numpy_class_weights
from tests.support.tiny_artifacts import IMAGE_SIZE, write_transform_graph

VOC_CLASSES, CITYSCAPES_CLASSES = 21, 19


def _serialized(pattern: str) -> tf.Tensor:
    files = tf.io.gfile.glob(pattern)
    return tf.stack(list(tf.data.TFRecordDataset(files, compression_type="GZIP")))


def _apply(transform_graph, serialized: tf.Tensor) -> dict:
    output = tft.TFTransformOutput(str(transform_graph))
    parsed = tf.io.parse_example(serialized, output.raw_feature_spec())
    return {name: value.numpy() for name, value in output.transform_features_layer()(parsed).items()}


def _transformed(tiny_artifacts, split: str) -> dict:
    return _apply(tiny_artifacts.transform_graph, _serialized(str(tiny_artifacts.examples / f"Split-{split}" / "*")))


def test_transformed_features_have_the_model_input_shapes_and_valid_mask_values(tiny_artifacts):
    transformed = _transformed(tiny_artifacts, "val")
    count = len(transformed["image"])
    assert transformed["image"].shape == (count, *IMAGE_SIZE, 3) and transformed["image"].dtype == np.float32
    assert transformed["mask"].shape == (count, *IMAGE_SIZE) and transformed["mask"].dtype == np.int64
    assert set(np.unique(transformed["mask"])) <= set(range(VOC_CLASSES)) | {255}
    assert set(transformed["size_bucket"]) == {b"le256"}
    assert transformed[features.CONTENT_SIZE].tolist() == [list(IMAGE_SIZE)] * count  # square images: no padding
    for name, length in ((features.NORMALIZATION_MEAN, 3), (features.CLASS_PIXEL_COUNTS, VOC_CLASSES),
                         *((name, VOC_CLASSES) for name in features.CLASS_WEIGHTS.values())):
        assert transformed[name].shape == (count, length)
        assert (transformed[name] == transformed[name][0]).all()  # a constant of the graph


def test_images_are_standardised_with_the_training_split_statistics(tiny_artifacts):
    images = _transformed(tiny_artifacts, "train")["image"].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(images.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(images.std(axis=0), 1.0, atol=1e-4)


def _ingested_real_sample(shared_data, tmp_path, fmt: str, data_dir: str, split: str):
    from tfx.utils import io_utils
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.example_gen.ingest import ingest
    from pipeline.pipeline import raw_schema_path

    ingest(fmt, str(shared_data / data_dir), str(tmp_path / "ingested"), splits=(split,), strict=True,
           beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    schema = io_utils.parse_pbtxt_file(str(raw_schema_path()), schema_pb2.Schema())
    return str(tmp_path / "ingested" / split / "*"), schema


def _reference(serialized: tf.Tensor, size, resize: str):
    """What the transform must have computed, by the core ops and numpy: resized pixels, masks, coverage."""
    parsed = tf.io.parse_example(serialized, {features.IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string),
                                              features.MASK_ENCODED: tf.io.FixedLenFeature([], tf.string),
                                              features.IMAGE_HEIGHT: tf.io.FixedLenFeature([], tf.int64),
                                              features.IMAGE_WIDTH: tf.io.FixedLenFeature([], tf.int64)})
    images, contents = preprocessing.decode_and_resize_images(parsed[features.IMAGE_ENCODED], size, resize)
    masks = preprocessing.decode_and_resize_masks(parsed[features.MASK_ENCODED], size, resize)
    covered = preprocessing.content_masks(contents, size).numpy()
    originals = np.stack([parsed[features.IMAGE_HEIGHT].numpy(), parsed[features.IMAGE_WIDTH].numpy()], axis=1)
    return images.numpy().astype(np.float64), masks.numpy(), contents.numpy(), covered, originals


@pytest.mark.parametrize("fmt, data_dir, split, num_classes, size, resize", [
    ("voc", "voc_sample/VOCdevkit/VOC2012", "train", VOC_CLASSES, (64, 64), "fit"),
    ("cityscapes", "cityscapes_sample", "val", CITYSCAPES_CLASSES, (64, 64), "fit"),
    ("voc", "voc_sample/VOCdevkit/VOC2012", "train", VOC_CLASSES, (64, 64), "fill"),
])
def test_real_samples_keep_their_aspect_ratio_and_statistics_equal_numpy(
        shared_data, tmp_path, fmt, data_dir, split, num_classes, size, resize):
    pattern, schema = _ingested_real_sample(shared_data, tmp_path, fmt, data_dir, split)
    config = PipelineConfig.from_dict({"model": {"image_size": list(size)}, "preprocessing": {"resize": resize}})
    graph = write_transform_graph(pattern, schema, tmp_path / "transform_graph",
                                  transform_custom_config(config, num_classes))
    serialized = _serialized(pattern)
    transformed = _apply(graph, serialized)
    pixels, masks, contents, covered, originals = _reference(serialized, size, resize)

    # Shapes, mask values, padding (fit) or cropping (fill), aspect ratio.
    assert transformed["image"].shape == (len(originals), *size, 3)
    np.testing.assert_array_equal(transformed["mask"], masks)
    assert set(np.unique(masks)) <= set(range(num_classes)) | {255}
    np.testing.assert_array_equal(transformed[features.CONTENT_SIZE], contents)
    if resize == "fit":
        assert (masks[~covered] == 255).all() and (~covered).any()
    else:
        assert covered.all()
    for (rows, cols), (height, width) in zip(contents, originals):
        fitting_side = max if resize == "fit" else min
        assert fitting_side(rows / size[0], cols / size[1]) == 1.0
        assert abs(cols - rows * width / height) <= 1.0

    # Statistics over the covered pixels, as numpy computes them.
    covered_pixels = pixels[covered]
    mean, std = covered_pixels.mean(axis=0), covered_pixels.std(axis=0)
    np.testing.assert_allclose(transformed[features.PIXEL_MEAN][0], mean, rtol=1e-4)
    np.testing.assert_allclose(transformed[features.NORMALIZATION_MEAN][0], mean, rtol=1e-4)
    np.testing.assert_allclose(transformed[features.NORMALIZATION_STD][0], std, rtol=1e-4)
    np.testing.assert_allclose(transformed["image"][covered], (covered_pixels - mean) / std, atol=1e-3)
    if (~covered).any():
        np.testing.assert_allclose(transformed["image"][~covered], 0.0, atol=1e-4)  # padded with the mean pixel

    # Class counts and weights, as numpy computes them on the same masks.
    counts = np.array([np.sum(masks == c) for c in range(num_classes)])
    np.testing.assert_array_equal(transformed[features.CLASS_PIXEL_COUNTS][0], counts)
    for weighting, name in features.CLASS_WEIGHTS.items():
        np.testing.assert_allclose(transformed[name][0], numpy_class_weights(list(masks), num_classes, weighting),
                                   rtol=1e-5)


@pytest.mark.parametrize("normalization", ["imagenet", "minus_one_to_one", "none"])
def test_fixed_normalisations_use_their_constants_and_stretch_fills_the_input(tmp_path, tiny_artifacts,
                                                                            normalization):
    from tfx.utils import io_utils
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = io_utils.parse_pbtxt_file(str(tiny_artifacts.schema / "schema.pbtxt"), schema_pb2.Schema())
    size = (16, 24)  # not the images' 32x32: stretched
    config = PipelineConfig.from_dict({"model": {"image_size": list(size)},
                                       "preprocessing": {"resize": "stretch", "normalization": normalization}})
    pattern = str(tiny_artifacts.examples / "Split-train" / "*")
    graph = write_transform_graph(pattern, schema, tmp_path / "graph", transform_custom_config(config, VOC_CLASSES))
    serialized = _serialized(pattern)
    transformed = _apply(graph, serialized)
    pixels, masks, _, covered, _ = _reference(serialized, size, "stretch")
    assert covered.all()
    mean, std = (np.array(values) for values in preprocessing.FIXED_NORMALIZATIONS[normalization])
    np.testing.assert_allclose(transformed["image"], (pixels - mean) / std, atol=1e-4)
    np.testing.assert_allclose(transformed[features.NORMALIZATION_MEAN][0], mean)
    np.testing.assert_allclose(transformed[features.PIXEL_MEAN][0], pixels.reshape(-1, 3).mean(axis=0), rtol=1e-4)
    np.testing.assert_array_equal(transformed["mask"], masks)


def test_transform_cache_key_follows_exactly_the_preprocessing_settings(tmp_path):
    """TFX reuses a cached Transform only when its exec properties are unchanged: the custom config carries
    every preprocessing setting and nothing that preprocessing does not depend on."""
    from components.core import sample_data
    from pipeline.pipeline import create_pipeline

    sample_data.write_voc_dataset(tmp_path / "data", num_images=4, image_size=(32, 32), seed=1)
    def custom_config(**sections):
        config = PipelineConfig.from_dict(sections)
        pipeline = create_pipeline(config, data_dir=str(tmp_path / "data"), pipeline_root=str(tmp_path / "root"),
                                   serving_model_dir=str(tmp_path / "serving"), tracking_uri=str(tmp_path / "mlruns"))
        transform = next(component for component in pipeline.components if component.id == "Transform")
        return transform.exec_properties["custom_config"]

    default = custom_config()
    assert custom_config() == default
    assert custom_config(training={"epochs": 3}, evaluation={"miou_threshold": 0.2}) == default
    assert custom_config(preprocessing={"resize": "stretch"}) != default
    assert custom_config(preprocessing={"normalization": "imagenet"}) != default
    assert custom_config(model={"image_size": [32, 32]}) != default
