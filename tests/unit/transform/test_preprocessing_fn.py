"""`preprocessing_fn` through real tf.Transform analysis (tiny generated VOC data): shapes and dtypes, masks
of class ids and the ignore label only, and images standardised with the training split's own statistics."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from tests.support.tiny_artifacts import IMAGE_SIZE


def _transformed(tiny_artifacts, split: str) -> dict:
    output = tft.TFTransformOutput(str(tiny_artifacts.transform_graph))
    files = tf.io.gfile.glob(str(tiny_artifacts.examples / f"Split-{split}" / "*"))
    serialized = tf.stack(list(tf.data.TFRecordDataset(files, compression_type="GZIP")))
    parsed = tf.io.parse_example(serialized, output.raw_feature_spec())
    return {name: value.numpy() for name, value in output.transform_features_layer()(parsed).items()}


def test_transformed_features_have_the_model_input_shapes_and_valid_mask_values(tiny_artifacts):
    transformed = _transformed(tiny_artifacts, "val")
    count = len(transformed["image"])
    assert transformed["image"].shape == (count, *IMAGE_SIZE, 3) and transformed["image"].dtype == np.float32
    assert transformed["mask"].shape == (count, *IMAGE_SIZE) and transformed["mask"].dtype == np.int64
    assert set(np.unique(transformed["mask"])) <= set(range(21)) | {255}
    assert set(transformed["size_bucket"]) == {b"le256"}


def test_images_are_standardised_with_the_training_split_statistics(tiny_artifacts):
    images = _transformed(tiny_artifacts, "train")["image"].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(images.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(images.std(axis=0), 1.0, atol=1e-4)
