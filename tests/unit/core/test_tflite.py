"""TFLite conversion and inference on a tiny U-Net trained for a few steps on generated 32x32 scenes.

Float TFLite gives the Keras model's class ids (except where its two best logits nearly tie) and its mIoU;
the int8 model is told apart by its int8 tensors and stays within `INT8_MIOU_TOLERANCE` of the Keras mIoU;
the representative set covers every class first; evaluation crops to `content_size` and scores at the
ground truth's own resolution, as the Evaluator does.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.core import tflite
from components.core.config import ModelConfig
from components.core.models.builder import build_model

NUM_CLASSES = 4
SIZE = (32, 32)
INT8_MIOU_TOLERANCE = 0.02
"""mIoU the int8 model may lose against the Keras model on this tiny task (2 points: the pipeline's default
is 1 point on its own evaluation split; 16 generated test images make a coarser estimate)."""
NEAR_TIE = 1e-3
"""Logit gap under which float32 rounding differences between TFLite and TensorFlow may flip an argmax."""


def _scenes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images of coloured rectangles on a grey background (class 0); class c has colour COLOURS[c]."""
    colours = np.array([[128, 128, 128], [220, 40, 40], [40, 200, 40], [40, 60, 220]], np.float32)
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, *SIZE), np.uint8)
    for mask in masks:
        for class_id in rng.permutation(np.arange(1, NUM_CLASSES))[:rng.integers(1, NUM_CLASSES)]:
            top, left = rng.integers(0, 20, size=2)
            height, width = rng.integers(6, 14, size=2)
            mask[top:top + height, left:left + width] = class_id
    images = colours[masks] + rng.normal(0, 20, size=(count, *SIZE, 3))
    return ((images - 128.0) / 64.0).astype(np.float32), masks


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig.from_dict({"image_size": list(SIZE),
                                               "unet": {"base_filters": 4, "depth": 2,
                                                        "batch_norm_momentum": 0.9}}), NUM_CLASSES)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images, masks = _scenes(64, seed=0)
    model.fit(images, masks, batch_size=16, epochs=12, verbose=0)
    test_images, test_masks = _scenes(16, seed=1)
    calibration = images[tflite.select_calibration_examples(
        [np.unique(mask).tolist() for mask in masks], count=16)]
    # The dynamic-range variant is converted and checked in the TFLiteExport component's test.
    converted = {variant: tflite.convert(model, SIZE, variant, calibration)
                 for variant in (tflite.FLOAT32, tflite.INT8)}
    return {"model": model, "images": test_images, "masks": test_masks, "tflite": converted}


def _evaluate(predictors, images, masks):
    batch = tflite.EvaluationBatch(images, np.tile(SIZE, (len(images), 1)), list(masks))
    return tflite.evaluate_predictors(predictors, [batch], NUM_CLASSES, 255, ["bg", "red", "green", "blue"],
                                      hausdorff=False)


def test_float_tflite_gives_the_keras_class_ids_except_at_near_ties(trained):
    logits = trained["model"](trained["images"], training=False).numpy()
    expected = logits.argmax(-1)
    segmenter = tflite.TFLiteSegmenter(trained["tflite"][tflite.FLOAT32], num_threads=1)
    np.testing.assert_allclose(segmenter.logits(trained["images"]), logits, atol=1e-3)
    got = segmenter.predict_class_ids(trained["images"])
    top_two = np.sort(logits, axis=-1)[..., -2:]
    near_tie = top_two[..., 1] - top_two[..., 0] < NEAR_TIE
    assert np.array_equal(got[~near_tie], expected[~near_tie])
    assert near_tie.mean() < 0.01


def test_float_tflite_scores_the_keras_mious_and_int8_stays_within_tolerance(trained):
    predictors = {"keras": tflite.keras_class_id_predictor(trained["model"])}
    predictors.update({variant: tflite.TFLiteSegmenter(content, num_threads=1).predict_class_ids
                       for variant, content in trained["tflite"].items()})
    results = _evaluate(predictors, trained["images"], trained["masks"])
    assert results["keras"].miou > 0.6, "the tiny model should have learnt the task"
    assert results[tflite.FLOAT32].miou == pytest.approx(results["keras"].miou, abs=1e-4)
    assert results[tflite.INT8].miou >= results["keras"].miou - INT8_MIOU_TOLERANCE


def test_the_three_files_are_told_apart_by_their_tensor_types_and_the_int8_input_is_quantized(trained):
    contents = trained["tflite"]
    descriptions = {variant: tflite.TFLiteSegmenter(content).tensor_descriptions()
                    for variant, content in contents.items()}
    float32 = descriptions[tflite.FLOAT32]
    assert float32["input"]["dtype"] == float32["output"]["dtype"] == "float32"
    assert float32["input"]["quantization"] is None
    int8 = descriptions[tflite.INT8]
    assert int8["input"]["dtype"] == int8["output"]["dtype"] == "int8"
    assert int8["input"]["shape"] == [1, *SIZE, 3] and int8["output"]["shape"] == [1, *SIZE, NUM_CLASSES]
    assert int8["input"]["quantization"]["scale"] > 0 and int8["output"]["quantization"]["scale"] > 0
    # Weights in int8: the file is much smaller (the tiny model's graph overhead keeps it above 1/4).
    assert len(contents[tflite.INT8]) < 0.6 * len(contents[tflite.FLOAT32])
    segmenter = tflite.TFLiteSegmenter(contents[tflite.INT8])
    scale, zero_point = int8["input"]["quantization"]["scale"], int8["input"]["quantization"]["zero_point"]
    quantized = segmenter.quantize_input(np.array([0.0, scale * 3, 1e6, -1e6], np.float32))
    np.testing.assert_array_equal(quantized, [zero_point, zero_point + 3, 127, -128])


def test_the_int8_model_needs_representative_images_and_variants_are_checked(trained):
    with pytest.raises(ValueError, match="representative images"):
        tflite.convert(trained["model"], SIZE, tflite.INT8)
    with pytest.raises(ValueError, match="unknown TFLite variant 'int4'"):
        tflite.convert(trained["model"], SIZE, "int4")


def test_the_representative_set_covers_every_class_first_then_spreads_over_the_rest():
    classes = [[0], [0], [0, 1], [0], [0, 2, 3], [0], [0, 3], [0], [0, 4], [0]]
    chosen = tflite.select_calibration_examples(classes, count=3)
    assert set().union(*(classes[index] for index in chosen)) == {0, 1, 2, 3, 4}
    assert chosen == [2, 4, 8]
    chosen = tflite.select_calibration_examples(classes, count=6)
    assert {2, 4, 8} <= set(chosen) and len(chosen) == 6
    assert tflite.select_calibration_examples(classes, count=2) == [2, 4]  # as many classes as 2 can hold
    assert tflite.select_calibration_examples(classes[:2], count=5) == [0, 1]


def test_evaluation_crops_to_the_content_and_scores_at_the_ground_truths_resolution():
    """A 4x4 model input whose top 2 rows show a 3x6 image (bottom rows padding): the prediction is cropped
    to 2x4 and resized to 3x6 before scoring, so a prediction right on the content scores mIoU 1 whatever
    the padding holds."""
    ground_truth = np.array([[0, 0, 0, 1, 1, 1]] * 3, np.uint8)
    prediction = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], np.uint8)
    batch = tflite.EvaluationBatch(np.zeros((1, 4, 4, 3), np.float32), np.array([[2, 4]]), [ground_truth])
    results = tflite.evaluate_predictors({"model": lambda images: prediction[None]}, [batch], 2, 255,
                                         ["a", "b"])
    assert results["model"].miou == 1.0
    assert results["model"].hausdorff is not None



def _transpose_conv_weight_scales(content: bytes) -> list[int]:
    """How many scales each TRANSPOSE_CONV's weights have (1: per tensor; the output channels: per channel)."""
    interpreter = tf.lite.Interpreter(model_content=content)
    tensors = {details["index"]: details for details in interpreter.get_tensor_details()}
    return [len(tensors[details["inputs"][1]]["quantization_parameters"]["scales"])
            for details in interpreter._get_ops_details() if details["op_name"] == "TRANSPOSE_CONV"]


def test_the_int8_unet_runs_as_one_xnnpack_partition(trained):
    """Its TRANSPOSE_CONVs have per-tensor weights (what XNNPACK takes in int8), so none falls out of the delegate."""
    content = trained["tflite"][tflite.INT8]
    assert _transpose_conv_weight_scales(content) == [1, 1]
    assert tflite.xnnpack_partitions(content) == 1


# As in `tflite.convert`: the converter asks for `quantized_input_stats` whenever the input is int8, though
# the representative dataset's calibration gives the input's scale and zero point.
@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs were expected:UserWarning")
def test_transpose_conv_weights_requantized_per_tensor_keep_the_per_channel_models_outputs():
    """A stride-2 transposed convolution whose output channels span a 16x range of weight magnitudes: the
    converter's per-channel int8 model is refused by XNNPACK; requantized per tensor it is delegated, and its
    output stays within the quantization error of the per-channel model's (and of the float layer's)."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 6), batch_size=1)
    layer = keras.layers.Conv2DTranspose(4, 2, strides=2)
    model = keras.Model(inputs, layer(inputs))
    kernel, _ = layer.get_weights()
    layer.set_weights([kernel * np.array([1.0, 4.0, 0.25, 2.0])[None, None, :, None],  # [H, W, out, in]
                       np.array([0.5, -1.0, 0.1, 2.0])])
    rng = np.random.default_rng(0)
    calibration = rng.normal(size=(16, 8, 8, 6)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    per_channel = converter.convert()
    per_tensor = tflite.per_tensor_transpose_convolutions(per_channel)
    assert _transpose_conv_weight_scales(per_channel) == [4] and tflite.xnnpack_partitions(per_channel) == 0
    assert _transpose_conv_weight_scales(per_tensor) == [1] and tflite.xnnpack_partitions(per_tensor) == 1

    images = calibration[:4]  # inside the calibrated input range: no clipping at the int8 input
    expected = model(images).numpy()
    errors = {name: np.abs(tflite.TFLiteSegmenter(content, num_threads=1).logits(images) - expected)
              for name, content in (("per_channel", per_channel), ("per_tensor", per_tensor))}
    output_step = tflite.TFLiteSegmenter(per_tensor).tensor_descriptions()["output"]["quantization"]["scale"]
    # Per tensor, the weights' step is that of the widest channel, so the narrow channels lose precision;
    # the error against the float layer stays within a few output steps and near the per-channel model's.
    assert errors["per_tensor"].max() <= 4 * output_step
    assert errors["per_tensor"].mean() <= errors["per_channel"].mean() + 0.5 * output_step


def test_a_model_without_transpose_convolutions_comes_back_unchanged(trained):
    content = trained["tflite"][tflite.FLOAT32]
    assert tflite.per_tensor_transpose_convolutions(content) is content  # float weights: nothing to requantize


def test_the_deeplab_runs_as_one_xnnpack_partition():
    """Its ASPP branches keep distinct dilation rates on a 2x2 feature map (6/12/18 lowered to 2/3/4), so the
    converter fuses each SpaceToBatchND / convolution / BatchToSpaceND back into a dilated CONV_2D and nothing
    leaves XNNPACK (with the three rates lowered to the same 2, DeepLab ran as 3 partitions, float or int8)."""
    model = build_model(ModelConfig.from_dict({
        "image_size": list(SIZE), "architecture": "deeplabv3plus",
        "deeplabv3plus": {"aspp_filters": 8, "low_level_filters": 4, "decoder_filters": 8,
                          "backbone": {"width_multiplier": 0.35}}}), NUM_CLASSES)
    content = tflite.convert(model, SIZE, tflite.FLOAT32)
    interpreter = tf.lite.Interpreter(model_content=content)
    operators = {details["op_name"] for details in interpreter._get_ops_details()}
    assert not operators & {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"}
    assert tflite.xnnpack_partitions(content) == 1
