"""Both architectures learn through the Trainer on a tight budget: the training loss falls and validation
mIoU ends far above chance (tiny generated VOC data, 32x32, 120 steps).

The budget is set so that the outcome hangs less on one seed's luck. Seeds of this test (val mIoU, bar
0.235): at 40 steps U-Net 0.18-0.33 (seeds 0-4) and DeepLabv3+ 0.33 / 0.19 / 0.17 (seeds 0-2, the last
still at the constant prediction); at 120 steps U-Net 0.31-0.48 (all five pass) and DeepLabv3+ 0.35 /
0.31 / 0.33 / 0.28 / 0.18 (seed 4's two validation pictures swing between 0.14 and 0.22 from epoch to
epoch; a learning rate of 0.003 was worse; batches of 8 also passed 4 of 5, seed 2 then falling to 0.14
while its training loss fell to 0.23: six training pictures are easily overfitted). Steps are cheap here
(~0.15 s); building, validating and exporting the model are most of the test's time."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from components import artifacts
from components.core.config import PipelineConfig
from components.core.examples import from_tf_example
from components.core.metrics import SegmentationEvaluator
from components.trainer.run import run_fn, trainer_custom_config
from tests.support.tiny_artifacts import IMAGE_SIZE, trainer_fn_args

MODELS = {
    "unet": {"unet": {"base_filters": 8, "depth": 2, "batch_norm_momentum": 0.9}},
    # Output stride 8: at 32x32 the ASPP sees 4x4 features (2x2 at stride 16 leave batch norm little to average).
    "deeplabv3plus": {"deeplabv3plus": {"output_stride": 8, "aspp_filters": 32, "low_level_filters": 16,
                                        "decoder_filters": 32, "backbone": {"width_multiplier": 0.35}}},
}


@pytest.mark.parametrize("architecture", sorted(MODELS))
def test_training_lowers_the_loss_and_raises_miou_far_above_chance(architecture, tiny_artifacts, tmp_path):
    config = PipelineConfig.from_dict({
        "model": {"architecture": architecture, "image_size": list(IMAGE_SIZE), **MODELS[architecture]},
        "training": {"epochs": 8, "steps_per_epoch": 15, "batch_size": 4, "eval_steps": 1, "seed": 0,
                     "optimizer": {"learning_rate": 0.01}}})
    train_steps = config.training.epochs * config.training.steps_per_epoch
    fn_args = trainer_fn_args(tiny_artifacts, tmp_path, trainer_custom_config(config, "pascal_voc"), train_steps)
    run_fn(fn_args)
    history = json.loads((tmp_path / "model_run" / artifacts.HISTORY_FILE).read_text())
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    # A random guess over the 21 classes scores about 1/21. The bar here is stricter: 1.4x the best
    # constant prediction (every pixel background, 0.168 on this data), computed with the project's metrics.
    # Measured at seed 0: U-Net 0.39, DeepLabv3+ 0.35.
    assert history["val_miou"][-1] > 1.4 * constant_prediction_miou(tiny_artifacts)


def constant_prediction_miou(tiny_artifacts) -> float:
    files = tf.io.gfile.glob(str(tiny_artifacts.examples / "Split-val" / "*"))
    masks = [from_tf_example(record.numpy()).example.mask for record in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    counts = np.bincount(np.concatenate([mask[mask != 255] for mask in masks]).ravel(), minlength=21)
    evaluator = SegmentationEvaluator(21, compute_hausdorff=False)
    for mask in masks:
        evaluator.add(mask, np.full_like(mask, int(np.argmax(counts))))
    return evaluator.result([str(index) for index in range(21)]).miou
