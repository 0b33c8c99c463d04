"""Training throughput of the Trainer's loop against a plain tf-keras script, and of its input pipeline alone.

Measured in one run, on the same examples (a synthetic VOC set ingested by segpipe, 320x240 JPEGs) at a
256x256 model input, for the pipeline's U-Net and DeepLabv3+ (MobileNetV2) at their config defaults:

- **trainer**: the Trainer's own path: TFX's data accessor reading the ingested TFRecords, the tf.Transform
  graph applied per batch (its output held in memory after the first pass, as the Trainer does when it
  fits `training.cache_limit_mb`), augmentation, the model compiled by `model_factory` inside the strategy of
  `strategy.make_strategy` (MirroredStrategy on this CPU), `model.fit`;
- **baseline**: a plain tf-keras script: the same examples decoded once, resized and standardised into
  numpy arrays held in memory, `tf.data.Dataset.from_tensor_slices(...).shuffle().repeat().batch()`,
  the same model, loss and optimizer, `model.fit` without a strategy;
- **trainer_bfloat16**: the trainer's path with `training.mixed_precision: mixed_bfloat16`;
- **input**: the Trainer's input pipeline alone (read, transform graph, augmentation), iterated as fast as
  it goes; its images/s against the trainer's training images/s must be >= 3 so training never waits.

Each model is built once and runs `--warmup` untimed steps (tracing, first-call costs); then the three
fits take turns in chunks of `--steps` timed steps (each a `fit` of one more step, timed from the end
of its first: see `time_fit`), `--repeats` rounds, and the reported ratio is the median of the rounds'
ratios: the machine's speed drifts (the same plain fit ran at 9.2-10.8 img/s over the rounds of one run
here), and the fits of a round see the same drift. Run from the repository root:
`.venv/bin/python benchmarks/bench_train.py`.
Progress goes to stderr; the last line of stdout is one JSON object: `value` = trainer images/s of
U-Net, `baseline` = plain images/s of U-Net (medians), `ratio` = the median round ratio (goal >= 1.0),
plus the same for DeepLabv3+, `ratio_bfloat16` (the Trainer with `training.mixed_precision:
mixed_bfloat16` against the same float32 plain script: the stretch goal's "settings"), the input-pipeline
ratios, the cores the process kept busy (`cores_used`, CPU time over wall time; 2 at most here) and each
fit's start-up (`<fit>_startup_s`: its first step's time less a steady step's, not in the rates).
"""

from __future__ import annotations

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from components.log_setup import configure_logging  # noqa: E402

configure_logging()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

IMAGE_SIZE = (256, 256)
ARCHITECTURES = ("unet", "deeplabv3plus")


def _progress(message: str) -> None:
    print(f"[bench_train {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_artifacts(root: Path, num_images: int):
    """Generates and ingests a synthetic VOC set, analyses it with `preprocessing_fn`, lays it out as TFX does."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.public import tfxio

    from components.core import sample_data
    from components.example_gen.ingest import ingest
    from components.core.config import PipelineConfig
    from components.transform.preprocessing import preprocessing_fn, transform_custom_config
    from pipeline.pipeline import raw_schema_path

    sample_data.write_voc_dataset(root / "voc", num_images=num_images, image_size=(240, 320), seed=0, val_fraction=0.25)
    ingest("voc", str(root / "voc"), str(root / "ingested"), splits=("train", "val"), strict=True,
           beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    for split in ("train", "val"):
        shutil.copytree(root / "ingested" / split, root / "examples" / f"Split-{split}")
    (root / "schema").mkdir()
    shutil.copyfile(raw_schema_path(), root / "schema" / "schema.pbtxt")
    schema = text_format.Parse((root / "schema" / "schema.pbtxt").read_text(), schema_pb2.Schema())
    raw = tfxio.TFExampleRecord(file_pattern=str(root / "examples" / "Split-train" / "*"), schema=schema)
    config = PipelineConfig.from_dict({"model": {"image_size": list(IMAGE_SIZE)}})
    fn = functools.partial(preprocessing_fn, custom_config=transform_custom_config(config, num_classes=21))
    with beam.Pipeline(argv=["--direct_running_mode=in_memory"]) as pipeline, \
            tft_beam.Context(temp_dir=str(root / "tft_tmp")):
        transform_fn = ((pipeline | raw.BeamSource(), raw.TensorAdapterConfig()) | tft_beam.AnalyzeDataset(fn))
        _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform_graph"))
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema),
                               str(root / "transform_graph" / tft.TFTransformOutput.RAW_METADATA_DIR))


def fn_args_for(root: Path, custom_config: dict, train_steps: int):
    """The FnArgs TFX's Trainer executor would give run_fn for these artifacts."""
    from tfx.components.trainer import fn_args_utils
    from tfx.proto import trainer_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import json_utils, proto_utils

    examples, schema, graph = (standard_artifacts.Examples(), standard_artifacts.Schema(),
                               standard_artifacts.TransformGraph())
    examples.uri, schema.uri, graph.uri = str(root / "examples"), str(root / "schema"), str(root / "transform_graph")
    examples.split_names = '["train", "val"]'
    exec_properties = {
        "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=["train"], num_steps=train_steps)),
        "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=["val"], num_steps=1)),
        "custom_config": json_utils.dumps(custom_config)}
    return fn_args_utils.get_common_fn_args({"examples": [examples], "schema": [schema], "transform_graph": [graph]},
                                            exec_properties, working_dir=str(root / "working"))


def warm_up(model, dataset, steps: int) -> None:
    """Runs `steps` untimed fit steps (tracing, first-call costs)."""
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)


class _StepClock(keras.callbacks.Callback):
    """Wall and CPU clocks at the start of training and at the end of each batch."""

    def on_train_begin(self, logs=None):
        self.begin = time.perf_counter()
        self.ends, self.cpu_ends = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(time.process_time())


def time_fit(model, dataset, steps: int, batch_size: int) -> tuple[float, float, float]:
    """Images per second of `steps` fit steps, the cores the process used meanwhile (CPU time / wall time),
    and the fit's start-up in seconds.

    The fit runs one step more than `steps` and is timed from the end of its first step to the end of its
    last: the steady rate of a training. The first step of every `fit` also waits for the input
    pipeline's iterator to start: 0.2-0.5 s more than a step for the Trainer's (MirroredStrategy's
    distributed iterator over TFXIO with held examples, shuffled), 0.01-0.03 s for the plain script's,
    here; the Trainer fits once a training, so it pays that once, where this benchmark's chunks of a few
    steps would pay it every chunk (one version of the code gave a U-Net ratio of 0.867 with it and 0.979
    without). The start-up is reported on its own: the first step's time less a steady step's. `fit` itself returns up to ~2.5 s
    after its last step (tf.data's autotuning thread winds down), which is not timed either.
    """
    clock = _StepClock()
    model.fit(dataset, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[clock])
    wall = clock.ends[-1] - clock.ends[0]
    step = wall / steps
    return (steps * batch_size / wall, (clock.cpu_ends[-1] - clock.cpu_ends[0]) / wall,
            clock.ends[0] - clock.begin - step)


def time_input(dataset, batches: int, batch_size: int) -> float:
    """Images per second of iterating the input pipeline alone (after one untimed batch)."""
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def in_memory_arrays(fn_args, transform_output) -> tuple[np.ndarray, np.ndarray]:
    """The training examples decoded, resized and standardised once (what a plain script would hold)."""
    files = tf.io.gfile.glob(fn_args.train_files[0])
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(16))
    layer = transform_output.transform_features_layer()
    images, masks = [], []
    for batch in records:
        transformed = layer(tf.io.parse_example(batch, transform_output.raw_feature_spec()))
        images.append(transformed["image"].numpy())
        masks.append(transformed["mask"].numpy())
    return np.concatenate(images), np.concatenate(masks)


def measure(root: Path, architecture: str, args) -> dict:
    import tensorflow_transform as tft

    from components.core.config import PipelineConfig
    from components.core.label_maps import load_label_map
    from components.trainer import strategy as strategy_lib
    from components.trainer.data import make_dataset, plan_holding
    from components.trainer.model_factory import build_compiled_model
    from components.trainer.run import trainer_custom_config

    config = PipelineConfig.from_dict({"model": {"architecture": architecture, "image_size": list(IMAGE_SIZE)},
                                       "training": {"batch_size": args.batch_size, "seed": 0}})
    label_map = load_label_map("pascal_voc")
    total = (args.warmup + args.steps) * args.repeats
    fn_args = fn_args_for(root, trainer_custom_config(config, label_map.name), total)
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    strategy = strategy_lib.make_strategy()
    train_data = make_dataset(fn_args.train_files, fn_args.data_accessor, transform_output, args.batch_size,
                              augmentation=config.training.augmentation, seed=0,
                              shuffle_buffer=config.training.shuffle_buffer,
                              image_size=config.model.image_size,
                              held_examples=plan_holding(fn_args.train_files, config.model.image_size,
                                                         config.training.cache_limit_mb).held_examples)
    images, masks = in_memory_arrays(fn_args, transform_output)
    plain_data = (tf.data.Dataset.from_tensor_slices((images, masks)).shuffle(len(images), seed=0).repeat()
                  .batch(args.batch_size).prefetch(tf.data.AUTOTUNE))
    bfloat16_config = config.replace(training={**config.training.to_dict(), "mixed_precision": "mixed_bfloat16"})
    with strategy.scope():
        model = build_compiled_model(config, label_map, total, args.batch_size)
        bfloat16_model = build_compiled_model(bfloat16_config, label_map, total, args.batch_size)
    keras.utils.set_random_seed(0)
    plain = build_compiled_model(config, label_map, total, args.batch_size)  # no strategy
    fits = {"trainer": (model, train_data), "trainer_bfloat16": (bfloat16_model, train_data),
            "baseline": (plain, plain_data)}
    for fitted, data in fits.values():
        warm_up(fitted, data, args.warmup)
    # The fits take turns in short chunks, the order rotating; each round's ratios are taken against its own
    # plain chunk (module docstring).
    rates = {name: [] for name in fits}
    startups = {name: [] for name in fits}
    ratios = {name: [] for name in fits if name != "baseline"}
    cores = []
    names = list(fits)
    for repeat in range(args.repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            rate, used, startup = time_fit(*fits[name], args.steps, args.batch_size)
            rates[name].append(rate)
            startups[name].append(startup)
            cores.append(used)
        for name in ratios:
            ratios[name].append(rates[name][-1] / rates["baseline"][-1])
        _progress(f"{architecture} round {repeat + 1}: " + ", ".join(f"{name} {rates[name][-1]:.2f}" for name in names)
                  + " img/s")
    input_rate = [time_input(train_data, args.input_batches, args.batch_size) for _ in range(3)]
    _progress(f"{architecture} input pipeline: {', '.join(f'{rate:.1f}' for rate in input_rate)} img/s")
    result = {name: statistics.median(values) for name, values in rates.items()}
    result.update(input=statistics.median(input_rate), cores_used=statistics.median(cores),
                  ratio=statistics.median(ratios["trainer"]),
                  ratio_bfloat16=statistics.median(ratios["trainer_bfloat16"]))
    result["input_ratio"] = result["input"] / result["trainer"]
    result.update({f"{name}_startup_s": statistics.median(values) for name, values in startups.items()})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48, help="synthetic images (3/4 of them train)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="timed steps of one chunk")
    parser.add_argument("--repeats", type=int, default=10,
                        help="rounds of trainer, bfloat16 trainer and plain chunks; the median round ratio is reported")
    parser.add_argument("--input-batches", type=int, default=20)
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        root = Path(tmp)
        _progress(f"set-up: {args.images} synthetic VOC images of 320x240, ingested and analysed at "
                  f"{IMAGE_SIZE[1]}x{IMAGE_SIZE[0]}")
        make_artifacts(root, args.images)
        results = {name: measure(root, name, args) for name in args.architectures.split(",")}
    headline = results.get("unet") or next(iter(results.values()))
    print(json.dumps({
        "name": "trainer_images_per_second_vs_plain_tf_keras",
        "value": round(headline["trainer"], 3), "baseline": round(headline["baseline"], 3),
        "ratio": round(headline["ratio"], 3), "unit": "images/s",
        "image_size": f"{IMAGE_SIZE[1]}x{IMAGE_SIZE[0]}", "batch_size": args.batch_size, "cpus": os.cpu_count(),
        "by_architecture": {name: {key: round(value, 3) for key, value in result.items()}
                            for name, result in results.items()},
    }))


if __name__ == "__main__":
    main()
