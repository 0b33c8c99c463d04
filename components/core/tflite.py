"""TFLite models of a segmentation network: conversion, inference with the TFLite interpreter, evaluation.

Three variants of one Keras model (preprocessed images [B, H, W, 3] at the training size -> per-class
logits [B, H, W, C]), in `VARIANTS` order:

* ``float32``: the plain converter; weights and activations in float32.
* ``dynamic_range``: weights stored in int8 (per channel for convolutions), activations float32;
  float32 input and output.
* ``int8``: full-integer: int8 weights and activations, only ``TFLITE_BUILTINS_INT8`` ops, **int8 input and
  output**. Activation ranges come from a representative dataset of transformed training images
  (:func:`select_calibration_examples` picks them so that every class is covered). The input is the
  preprocessed image quantized with the input tensor's parameters, ``q = round(x / scale) + zero_point``
  clipped to [-128, 127]; the output is the logits quantized likewise. Int8 I/O rather than float I/O
  keeps the whole graph integer (no QUANTIZE/DEQUANTIZE at the edges, what integer-only accelerators
  need) and lets an application take the class id as the argmax of the int8 output directly (the scale
  is positive, so argmax commutes with dequantization). The parameters travel in the side JSON.
  Convolution weights are quantized per output channel (the converter's default), except those of
  TRANSPOSE_CONV, which :func:`per_tensor_transpose_convolutions` requantizes per tensor: the XNNPACK
  delegate of the pinned TensorFlow (2.16) takes an int8 TRANSPOSE_CONV only with per-tensor weights, so
  with per-channel ones each transposed convolution fell back to TFLite's own kernel and split the
  graph into several delegate partitions (the U-Net's three made four; int8 ran 1.45 ms against 1.02 ms
  with all of it delegated, one thread, 64x64).

Every variant takes one image (input [1, H, W, 3], a static shape): with a dynamic batch dimension the
interpreter's default XNNPACK delegate refuses the graph ("only supports static-sized tensors") and the
int8 model ran ~12x slower than float32 here instead of faster. Batches are run image by image.

:class:`TFLiteSegmenter` runs a model with ``tf.lite.Interpreter`` (quantizing int8 input itself) and
returns class ids; :func:`median_latency_ms` times single images. :func:`evaluate_predictors` scores any
number of predictors (the Keras model, each TFLite model) in one pass over the evaluation examples with the
Evaluator's code: the prediction is cropped to the transform's ``content_size`` and resized back to the
ground truth's own resolution (:func:`~components.core.metrics.prediction_at_image_size`), and a
:class:`~components.core.metrics.SegmentationEvaluator` accumulates mIoU, per-class IoU, Dice and HD95.

Framework-free in the project's sense: TensorFlow, no TFX, Beam or MLflow.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
import warnings
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_util
from tensorflow.lite.tools import flatbuffer_utils

from components.core.evaluation_result import EvaluationResult
from components.core.metrics import SegmentationEvaluator, prediction_at_image_size

FLOAT32 = "float32"
DYNAMIC_RANGE = "dynamic_range"
INT8 = "int8"
VARIANTS = (FLOAT32, DYNAMIC_RANGE, INT8)
"""The TFLite variants of every model, in the order they are converted and reported."""

ClassIdPredictor = Callable[[np.ndarray], np.ndarray]
"""Preprocessed images float32 [B, H, W, 3] -> class ids [B, H, W]."""


# --------------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------------


def logits_function(model: Callable, image_size: Sequence[int]) -> tf.types.experimental.ConcreteFunction:
    """The concrete function images [1, H, W, 3] float32 -> `model(images, training=False)`.

    Args:
        model: a Keras model, or a Keras model loaded back with `tf.saved_model.load` (the exported
            serving model: its `__call__` is the network alone, without the transform graph).
        image_size: (height, width) the model was trained at.
    """
    height, width = (int(side) for side in image_size)
    spec = tf.TensorSpec([1, height, width, 3], tf.float32, name="image")
    # Without AutoGraph: neither a Keras model nor a loaded SavedModel's restored call has Python control
    # flow to convert, and with AutoGraph every Keras layer's `call` went through its source
    # transformation (16 s instead of 0.5 s to trace the test's tiny DeepLabv3+).
    return tf.function(lambda image: model(image, training=False), input_signature=[spec],
                       autograph=False).get_concrete_function()


def convert(model: Callable, image_size: Sequence[int], variant: str,
            representative_images: np.ndarray | None = None) -> bytes:
    """Converts `model` to one TFLite variant (see the module docstring for what each holds).

    Args:
        model: see :func:`logits_function`.
        image_size: (height, width) of the model's input.
        variant: one of `VARIANTS`.
        representative_images: float32 [N, H, W, 3] preprocessed training images, fed one at a time to
            calibrate the activation ranges; required for ``int8`` only.

    Returns:
        The ``.tflite`` flatbuffer.

    Raises:
        ValueError: an unknown variant, or ``int8`` without representative images.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown TFLite variant {variant!r}; expected one of {VARIANTS}")
    if variant == INT8 and (representative_images is None or len(representative_images) == 0):
        raise ValueError("the int8 variant needs representative images to calibrate activation ranges")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([logits_function(model, image_size)], model)
    # Convert the frozen concrete function. Given the model as its trackable object, TF 2.16's converter
    # first saves the whole model as a SavedModel, which traces every Keras layer's call functions again:
    # a tiny DeepLabv3+'s float32 conversion took 35 s that way and 1.3 s frozen (the benchmark's 64x64
    # one: 33 s against 2-3 s per variant).
    converter.experimental_lower_to_saved_model = False
    if variant in (DYNAMIC_RANGE, INT8):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == INT8:
        images = np.asarray(representative_images, dtype=np.float32)
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        with warnings.catch_warnings():
            # The frozen-graph path asks for `quantized_input_stats` whenever the input is int8; with a
            # representative dataset the calibration gives the input's scale and zero point instead.
            warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
            return per_tensor_transpose_convolutions(converter.convert())
    return converter.convert()


def per_tensor_transpose_convolutions(model_content: bytes) -> bytes:
    """The int8 model with every TRANSPOSE_CONV's weights and bias requantized from per-channel to per-tensor.

    Why: TensorFlow 2.16's XNNPACK delegate refuses an int8 TRANSPOSE_CONV whose weights have one scale per
    output channel (what the converter writes, and the converter has no per-op switch: only a global,
    private `_experimental_disable_per_channel`), so such a node runs on TFLite's builtin kernel, outside
    the delegate, and cuts the delegated graph in pieces around it.

    How: with per-channel scales ``s_c`` the tensor scale is ``s = max(s_c)``; the weights become
    ``round(q * s_c / s)`` (within [-127, 127] since ``s_c <= s``; the real value moves by at most
    ``s / 2``), and the int32 bias, whose scale must be ``input_scale * s``, becomes
    ``round(b * s_c / s)``. The transposed convolutions of a U-Net have no batch normalisation folded into
    them, so their channel scales are close (within 1.5x on the benchmark's U-Net) and little precision is
    lost. DeepLabv3+'s optional transposed-convolution decoder has batch normalisation folded into them;
    its int8 model stayed within 0.001 mIoU of the float one on `cityscapes_deeplabv3plus.yaml` (three
    runs), and the pipeline measures the int8 model's mIoU on every run in any case. Other ops, and a
    TRANSPOSE_CONV whose weights are already per tensor (or not constant, or quantized along another
    dimension than the output channels), are left as they are; a model without a per-channel one comes back
    byte for byte (DeepLabv3+ with the paper's bilinear decoder, which upsamples with resizes, is unchanged).

    Args:
        model_content: a full-integer ``.tflite`` flatbuffer.

    Returns:
        The rewritten flatbuffer.
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_content))
    schema = flatbuffer_utils.schema_fb
    transpose_conv_codes = {index for index, code in enumerate(model.operatorCodes)
                            if schema_util.get_builtin_code_from_operator_code(code)
                            == schema.BuiltinOperator.TRANSPOSE_CONV}
    buffer_users: dict[int, int] = {}
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            buffer_users[tensor.buffer] = buffer_users.get(tensor.buffer, 0) + 1

    def own_buffer(tensor) -> np.ndarray:
        """The tensor's constant bytes, moved into a buffer of its own first if another tensor shares it."""
        data = np.asarray(model.buffers[tensor.buffer].data, dtype=np.uint8)
        if buffer_users[tensor.buffer] > 1:
            buffer_users[tensor.buffer] -= 1
            model.buffers.append(schema.BufferT())
            tensor.buffer = len(model.buffers) - 1
            buffer_users[tensor.buffer] = 1
        return data

    changed = False
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            if operator.opcodeIndex not in transpose_conv_codes:
                continue
            # TRANSPOSE_CONV inputs: output shape, weights [O, H, W, I], input, optional bias [O].
            inputs = list(operator.inputs) + [-1]
            weights, activation, bias = (subgraph.tensors[inputs[1]], subgraph.tensors[inputs[2]],
                                         subgraph.tensors[inputs[3]] if inputs[3] >= 0 else None)
            quantization = weights.quantization
            if (weights.type != schema.TensorType.INT8 or model.buffers[weights.buffer].data is None
                    or quantization is None or quantization.scale is None or len(quantization.scale) <= 1
                    or quantization.quantizedDimension != 0):
                continue
            channel_scales = np.asarray(quantization.scale, dtype=np.float64)
            scale = np.float32(channel_scales.max())
            ratios = channel_scales / float(scale)
            values = own_buffer(weights).view(np.int8).reshape(weights.shape).astype(np.float64)
            requantized = np.round(values * ratios.reshape(-1, *[1] * (values.ndim - 1)))  # |q| only shrinks
            model.buffers[weights.buffer].data = requantized.astype(np.int8).view(np.uint8).ravel()
            quantization.scale, quantization.zeroPoint, quantization.quantizedDimension = [float(scale)], [0], 0
            if bias is not None and model.buffers[bias.buffer].data is not None:
                bias_values = own_buffer(bias).view(np.int32).astype(np.float64)
                model.buffers[bias.buffer].data = np.round(bias_values * ratios).astype(np.int32).view(np.uint8)
                bias.quantization.scale = [float(np.float32(activation.quantization.scale[0]) * scale)]
                bias.quantization.zeroPoint, bias.quantization.quantizedDimension = [0], 0
            changed = True
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else model_content


def xnnpack_partitions(model_content: bytes) -> int:
    """How many DELEGATE nodes the interpreter's default XNNPACK delegate makes of a model: 1 when it takes the
    whole graph; more when ops it refuses (left to TFLite's own kernels) cut the graph, as per-channel int8
    TRANSPOSE_CONVs did; 0 when it takes nothing."""
    interpreter = tf.lite.Interpreter(model_content=model_content, num_threads=1)
    interpreter.allocate_tensors()
    return sum(details["op_name"] == "DELEGATE" for details in interpreter._get_ops_details())


def select_calibration_examples(classes_per_example: Sequence[Iterable[int]], count: int) -> list[int]:
    """Indices of the examples of a representative dataset: every class covered first, then spread evenly.

    Greedy set cover: repeatedly takes the example that adds the most classes not yet covered (ties: the
    one whose new classes are rarest over the split, then the earliest), until every class present in
    the split is covered or `count` are taken; the rest of the `count` are spread evenly over the
    remaining examples, in split order, so that the calibration also sees typical images.

    Args:
        classes_per_example: the class ids present in each example (e.g. its `classes_present`).
        count: how many examples to take (all of them if there are fewer).

    Returns:
        Sorted example indices.
    """
    class_sets = [frozenset(int(class_id) for class_id in classes) for classes in classes_per_example]
    count = min(int(count), len(class_sets))
    frequency: dict[int, int] = {}
    for classes in class_sets:
        for class_id in classes:
            frequency[class_id] = frequency.get(class_id, 0) + 1
    uncovered = set(frequency)
    chosen: list[int] = []
    while uncovered and len(chosen) < count:
        taken = set(chosen)
        best = max((index for index in range(len(class_sets)) if index not in taken),
                   key=lambda index: (len(class_sets[index] & uncovered),
                                      sum(1.0 / frequency[c] for c in class_sets[index] & uncovered), -index))
        if not class_sets[best] & uncovered:
            break
        chosen.append(best)
        uncovered -= class_sets[best]
    remaining = [index for index in range(len(class_sets)) if index not in set(chosen)]
    wanted = count - len(chosen)
    if wanted > 0 and remaining:
        positions = np.linspace(0, len(remaining) - 1, num=wanted).round().astype(int)
        chosen += [remaining[position] for position in dict.fromkeys(positions.tolist())]
    return sorted(chosen)


# --------------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------------


def _quantization(details: Mapping) -> dict | None:
    scale, zero_point = details["quantization"]
    return {"scale": float(scale), "zero_point": int(zero_point)} if scale else None


class TFLiteSegmenter:
    """One TFLite segmentation model under `tf.lite.Interpreter` (XNNPACK on CPU).

    Takes preprocessed float32 images at the training size whatever the model's input type (an int8
    model's input is quantized here with its own parameters) and returns class ids.
    """

    def __init__(self, model_content: bytes, num_threads: int | None = None):
        """Loads the model.

        Args:
            model_content: a ``.tflite`` flatbuffer from :func:`convert`.
            num_threads: interpreter threads; None or 0 means one per core.
        """
        self.model_content = model_content
        self._interpreter = tf.lite.Interpreter(model_content=model_content,
                                                num_threads=num_threads or os.cpu_count() or 1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]

    @property
    def input_dtype(self) -> np.dtype:
        """The model's input tensor type (float32, or int8 for the full-integer model)."""
        return np.dtype(self._input["dtype"])

    def tensor_descriptions(self) -> dict:
        """The input and output tensors as a mobile application needs them: name, shape (batch 1), dtype and
        quantization parameters (`{"scale", "zero_point"}`, None for a float tensor)."""
        return {role: {"name": details["name"], "shape": [int(side) for side in details["shape"]],
                       "dtype": np.dtype(details["dtype"]).name, "quantization": _quantization(details)}
                for role, details in (("input", self._input), ("output", self._output))}

    def quantize_input(self, images: np.ndarray) -> np.ndarray:
        """Preprocessed float32 images in the model's input type (``round(x / scale) + zero_point``, clipped)."""
        images = np.asarray(images, dtype=np.float32)
        quantization = _quantization(self._input)
        if quantization is None:
            return images
        info = np.iinfo(self.input_dtype)
        quantized = np.round(images / quantization["scale"]) + quantization["zero_point"]
        return np.clip(quantized, info.min, info.max).astype(self.input_dtype)

    def raw_output(self, images: np.ndarray) -> np.ndarray:
        """Runs the model on a batch of preprocessed float32 images (one invocation per image); returns the
        output tensor as it comes (float32 logits, or int8 quantized logits), [B, H, W, C]."""
        images = self.quantize_input(images)
        outputs = []
        for image in images:
            self._interpreter.set_tensor(self._input["index"], image[None])
            self._interpreter.invoke()
            outputs.append(self._interpreter.get_tensor(self._output["index"]))
        return np.concatenate(outputs)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Float32 logits [B, H, W, C] (dequantized for the int8 model)."""
        output = self.raw_output(images)
        quantization = _quantization(self._output)
        if quantization is None:
            return output.astype(np.float32, copy=False)
        return (output.astype(np.float32) - quantization["zero_point"]) * quantization["scale"]

    def predict_class_ids(self, images: np.ndarray) -> np.ndarray:
        """Class ids [B, H, W] (uint8 up to 256 classes): the argmax of the raw output (for int8 the
        quantized logits: dequantization is increasing, so the argmax is the same)."""
        class_ids = np.argmax(self.raw_output(images), axis=-1)
        return class_ids.astype(np.uint8) if class_ids.max(initial=0) < 256 else class_ids


def median_latency_ms(run_one_image: Callable[[], object], runs: int, warmup: int = 1) -> float:
    """Median wall-clock milliseconds of `runs` calls of `run_one_image`, after `warmup` untimed calls."""
    for _ in range(warmup):
        run_one_image()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run_one_image()
        times.append((time.perf_counter() - start) * 1e3)
    return float(statistics.median(times))


# --------------------------------------------------------------------------------------------------
# Evaluation with the Evaluator's metric code
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvaluationBatch:
    """Evaluation examples as the transform gives them, with their ground truth at its own resolution.

    Attributes:
        images: float32 [B, H, W, 3], the transform's `image` (the model's input).
        content_sizes: int [B, 2], the transform's `content_size` (rows and columns showing the image).
        ground_truths: B class-id masks, each at its image's original size (the raw mask PNG decoded).
    """

    images: np.ndarray
    content_sizes: np.ndarray
    ground_truths: Sequence[np.ndarray]


def evaluate_predictors(predictors: Mapping[str, ClassIdPredictor], batches: Iterable[EvaluationBatch],
                        num_classes: int, ignore_label: int, class_names: Sequence[str],
                        hausdorff: bool = True) -> dict[str, EvaluationResult]:
    """Scores every predictor on the same examples, in one pass, exactly as the Evaluator scores a model.

    For each example and predictor: ``prediction_at_image_size(class_ids, content_size, gt.shape)`` then
    ``SegmentationEvaluator.add(gt, prediction)`` (one evaluator per predictor, over the whole set).

    Args:
        predictors: name -> function from preprocessed images to class ids.
        batches: the evaluation examples.
        num_classes, ignore_label, class_names: from the label map.
        hausdorff: also compute HD / HD95 (as the Evaluator does).

    Returns:
        name -> the :class:`EvaluationResult` (mIoU, per-class IoU and Dice, Hausdorff; `num_images`).
    """
    evaluators = {name: SegmentationEvaluator(num_classes, ignore_label=ignore_label, compute_hausdorff=hausdorff)
                  for name in predictors}
    num_images = 0
    for batch in batches:
        num_images += len(batch.ground_truths)
        for name, predict in predictors.items():
            class_ids = np.asarray(predict(batch.images))
            for prediction, content_size, ground_truth in zip(class_ids, batch.content_sizes, batch.ground_truths):
                evaluators[name].add(ground_truth, prediction_at_image_size(prediction, content_size,
                                                                            ground_truth.shape))
    return {name: dataclasses.replace(evaluator.result(class_names), num_images=num_images)
            for name, evaluator in evaluators.items()}


def miou_drop(reference_miou: float | None, miou: float | None) -> float:
    """How much mIoU a converted model loses against the reference (negative when it gains); an undefined
    mIoU (no evaluated pixel) counts as 0."""
    return float((reference_miou or 0.0) - (miou or 0.0))


def is_accepted(reference_miou: float | None, miou: float | None, max_miou_drop: float) -> bool:
    """Whether a converted model is within the accepted mIoU loss: ``miou_drop <= max_miou_drop`` (to 1e-9)."""
    return miou_drop(reference_miou, miou) <= max_miou_drop + 1e-9


def keras_class_id_predictor(model: Callable) -> ClassIdPredictor:
    """The predictor of a Keras model (or a loaded Keras SavedModel): argmax of `model(images, training=False)`."""

    def predict(images: np.ndarray) -> np.ndarray:
        return tf.argmax(model(tf.constant(images, tf.float32), training=False), axis=-1).numpy()

    return predict
