"""Benchmark: the pipeline's TFMA evaluation on Beam's DirectRunner against a framework-free loop.

Both score the same examples with the same model in the same run:

* ``value`` (TFMA): TFX 1.16's own Evaluator executor (``tfx.components.evaluator.executor.Executor``,
  exactly what the pipeline's Evaluator component runs) with the pipeline's ``EvalConfig``
  (``build_eval_config("pascal_voc", 0.0, 1.0)``: ``serve_examples`` + ``slice_features``,
  ``ExampleCount`` and ``SegmentationMetrics`` with Hausdorff, 6 slicing specs), reading the eval
  split through TFXIO with the raw schema and writing its results. Timed end to end: pipeline
  construction, Beam worker start-up, model loading, inference, metrics, writing, blessing. The
  headline runner mode is the one the local pipeline gives its Evaluator (``pipeline/local_runner.py``,
  ``beam_options.local_component_args``): in_memory; ``--direct_running_mode=multi_processing
  --direct_num_workers=<cpus>`` (2 here), the other components' mode, is timed too and reported beside
  it (``--modes`` chooses).
* ``baseline`` (framework-free): ``tf.saved_model.load`` the same SavedModel, read the same gzip
  TFRecords, call ``serve_examples`` on batches of serialized examples, resize ``class_ids`` back
  to each mask's resolution with ``resize_nearest`` and feed one ``SegmentationEvaluator``
  (Hausdorff included). Model loading is included, as it is in TFMA's time.

Both must report the same mIoU (to 1e-6): a correctness check of the TFMA adapter
(``components/evaluator/segmentation_metrics.py``).

Set-up (in a temporary folder, deleted afterwards; not timed): a synthetic VOC dataset
(``sample_data.write_voc_dataset``, by default 1610 images of 320x240, 1449 of them in ``val``: the size
of VOC 2012's own val split; Cityscapes' has 500 much larger frames), ingested
with ``components.example_gen.ingest.ingest`` (in-memory Beam), a transform graph from tf.Transform
(``preprocessing_fn`` with ``model.image_size`` [64, 64], analysed on ``train``), and an untrained small
U-Net (base_filters 8, depth 3, random weights: timing, not accuracy) exported with
``export_serving_model``.

Scale matters: TFMA costs about what the framework-free loop costs per example but adds a fixed few
seconds (Beam pipeline construction and translation, per-stage bundle set-up, model loading), so the
ratio falls as the evaluation set grows. The headline is the 1449-example set; the same run also times
the headline mode and the baseline on its first ``--small-examples`` (256) and reports that ratio
(``small_set``), each path's fitted fixed and per-example cost, and the set size from which TFMA stays
within 2x (``scaling``).

Repeats are interleaved (baseline, then TFMA in each mode, then again), so that load
from other processes on the machine affects all alike; medians are reported, with the 1-minute load
average before and after. TFX's executor builds a throw-away TFX sdist in ``mkdtemp()`` on every run:
``TMPDIR`` points into the temporary folder so that nothing is left behind.

Run from the repository root: ``.venv/bin/python benchmarks/bench_eval.py``. Progress goes to stderr;
the last line of stdout is one JSON object: ``value`` = median TFMA seconds (headline mode),
``baseline`` = median framework-free seconds, ``ratio`` = value / baseline (lower is better; the goal
in our issue is <= 2). Not part of the timings: ``--breakdown`` also times, once each in-memory,
EvalConfig variants that isolate the stages (no Hausdorff, overall slice only, ``ExampleCount`` only);
``--profile`` runs TFMA once in-memory under cProfile and prints the hottest functions to stderr.
"""

from __future__ import annotations

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import functools  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from components.core.datasets import label_map_name  # noqa: E402
from components.log_setup import configure_logging  # noqa: E402

configure_logging()
# Beam's multi-processing workers forward their start-up warnings through this logger on every run.
logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)

import tensorflow as tf  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RAW_SCHEMA = REPO / "schemas" / "raw_schema.pbtxt"
LABEL_MAP = label_map_name("voc")
MODEL_IMAGE_SIZE = (64, 64)
MIOU_TOLERANCE = 1e-6


def _progress(message: str) -> None:
    print(f"[bench_eval {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _read_schema():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(RAW_SCHEMA.read_text(), schema_pb2.Schema())


# --------------------------------------------------------------------------------------------------
# Set-up (not timed)
# --------------------------------------------------------------------------------------------------


def make_examples(tmp: Path, num_images: int, image_size: tuple[int, int], val_fraction: float) -> dict:
    """Writes a synthetic VOC dataset and ingests it to ``tmp/examples/{train,val}``."""
    from components.core import sample_data
    from components.example_gen.ingest import ingest

    summary = sample_data.write_voc_dataset(tmp / "voc", num_images=num_images, image_size=image_size, seed=0,
                                            val_fraction=val_fraction)
    report = ingest("voc", str(tmp / "voc"), str(tmp / "examples"), splits=("train", "val"), strict=True,
                    beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    return {"summary": summary, "report": report}


def make_transform_graph(train_pattern: str, transform_dir: Path, temp_dir: Path) -> None:
    """Analyses ``train`` with the project's ``preprocessing_fn`` and writes the transform output."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.public import tfxio

    from components.core.config import PipelineConfig
    from components.transform.preprocessing import preprocessing_fn, transform_custom_config

    schema = _read_schema()
    raw_tfxio = tfxio.TFExampleRecord(file_pattern=train_pattern, schema=schema)
    config = PipelineConfig.from_dict({"model": {"image_size": list(MODEL_IMAGE_SIZE)}})
    fn = functools.partial(preprocessing_fn, custom_config=transform_custom_config(config, num_classes=21))
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(temp_dir)):
        raw = pipeline | "Read" >> raw_tfxio.BeamSource()
        transform_fn = (raw, raw_tfxio.TensorAdapterConfig()) | "Analyze" >> tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | "Write" >> tft_beam.WriteTransformFn(str(transform_dir))
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema),
                               str(transform_dir / tft.TFTransformOutput.RAW_METADATA_DIR))


def make_model(transform_dir: Path, export_dir: Path) -> None:
    """Builds a small untrained U-Net and exports it with the transform graph."""
    import tensorflow_transform as tft
    import tf_keras

    from components.core.config import ExportConfig, ModelConfig
    from components.core.label_maps import load_label_map
    from components.core.models.builder import build_model
    from components.trainer.export import export_serving_model

    config = ModelConfig.from_dict({"image_size": list(MODEL_IMAGE_SIZE), "unet": {"base_filters": 8, "depth": 3}})
    tf_keras.utils.set_random_seed(0)
    label_map = load_label_map(LABEL_MAP)
    model = build_model(config, label_map.num_classes)
    export_serving_model(model, tft.TFTransformOutput(str(transform_dir)), str(export_dir), label_map,
                         max_image_pixels=ExportConfig().max_image_pixels)


# --------------------------------------------------------------------------------------------------
# (a) TFMA through TFX's Evaluator executor
# --------------------------------------------------------------------------------------------------


def make_artifact_layout(tmp: Path) -> dict[str, Path]:
    """Folders laid out as TFX artifacts: Examples (``Split-val``), Model (``Format-Serving``), Schema."""
    layout = {"examples": tmp / "artifacts" / "examples", "model": tmp / "artifacts" / "model",
              "schema": tmp / "artifacts" / "schema"}
    for path in layout.values():
        path.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        os.symlink(tmp / "examples" / split, layout["examples"] / f"Split-{split}")
    shutil.copyfile(RAW_SCHEMA, layout["schema"] / "schema.pbtxt")
    return layout


def run_tfma(layout: dict[str, Path], output_dir: Path, beam_args: list[str], eval_config=None) -> float:
    """Runs TFX's Evaluator executor on the ``val`` split; returns the overall mIoU it wrote.

    Args:
        layout: Artifact folders from :func:`make_artifact_layout`.
        output_dir: Receives the evaluation and blessing artifacts.
        beam_args: Beam pipeline arguments (DirectRunner mode and workers).
        eval_config: A `tfma.EvalConfig`; default: the pipeline's ``build_eval_config("pascal_voc", 0.0, 1.0)``.
    """
    from tfx.components.evaluator.executor import Executor
    from tfx.components.util import examples_utils
    from tfx.dsl.components.base import base_beam_executor
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import json_utils, proto_utils

    from components.evaluation_reader import load_metrics_by_slice
    from components.evaluator.eval_config import MIOU, build_eval_config

    examples = standard_artifacts.Examples()
    examples.uri = str(layout["examples"])
    examples.split_names = artifact_utils.encode_split_names(["train", "val"])
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    model = standard_artifacts.Model()
    model.uri = str(layout["model"])
    schema = standard_artifacts.Schema()
    schema.uri = str(layout["schema"])
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(output_dir / "evaluation")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(output_dir / "blessing")
    for path in (evaluation.uri, blessing.uri):
        os.makedirs(path, exist_ok=True)
    exec_properties = {
        "eval_config": proto_utils.proto_to_json(eval_config or build_eval_config(LABEL_MAP, 0.0, 1.0)),
        "example_splits": json_utils.dumps(["val"]),
    }
    executor = Executor(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(beam_args),
                                                                    tmp_dir=str(output_dir / "tmp")))
    executor.Do({"examples": [examples], "model": [model], "schema": [schema]},
                {"evaluation": [evaluation], "blessing": [blessing]}, exec_properties)
    return load_metrics_by_slice(evaluation.uri)[()][MIOU]


# --------------------------------------------------------------------------------------------------
# (b) Framework-free baseline
# --------------------------------------------------------------------------------------------------


def run_baseline(val_files: list[str], model_dir: Path, batch_size: int) -> tuple[float, dict[str, float]]:
    """Reads, infers and scores the ``val`` examples without Beam or TFMA.

    Returns:
        The mIoU and the seconds spent per stage (load, read, inference, metrics).
    """
    from components.core.examples import decode_mask_png
    from components.core.features import CLASS_IDS, MASK_ENCODED
    from components.core.label_maps import load_label_map
    from components.core.metrics import SegmentationEvaluator, resize_nearest

    stages = dict.fromkeys(("load", "read", "inference", "metrics"), 0.0)
    start = time.perf_counter()
    serve = tf.saved_model.load(str(model_dir)).signatures["serve_examples"]
    stages["load"] = time.perf_counter() - start

    start = time.perf_counter()
    records = list(tf.data.TFRecordDataset(val_files, compression_type="GZIP").as_numpy_iterator())
    stages["read"] = time.perf_counter() - start

    label_map = load_label_map(LABEL_MAP)
    evaluator = SegmentationEvaluator(label_map.num_classes, compute_hausdorff=True)
    for offset in range(0, len(records), batch_size):
        batch = records[offset:offset + batch_size]
        start = time.perf_counter()
        class_ids = serve(examples=tf.constant(batch))[CLASS_IDS].numpy()
        stages["inference"] += time.perf_counter() - start
        start = time.perf_counter()
        for record, prediction in zip(batch, class_ids):
            example = tf.train.Example.FromString(record)
            ground_truth = decode_mask_png(example.features.feature[MASK_ENCODED].bytes_list.value[0])
            evaluator.add(ground_truth, resize_nearest(prediction, ground_truth.shape))
        stages["metrics"] += time.perf_counter() - start
    return evaluator.result(label_map.class_names).miou, stages


# --------------------------------------------------------------------------------------------------
# Profiling (optional, not part of the timings)
# --------------------------------------------------------------------------------------------------


def profile_tfma(layout: dict[str, Path], output_dir: Path, top: int = 35) -> None:
    """Runs TFMA once in-memory (everything in this process) under cProfile; prints the hottest calls."""
    profiler = cProfile.Profile()
    profiler.enable()
    run_tfma(layout, output_dir, _mode_args("in_memory", 1))
    profiler.disable()
    for sort_key in ("cumulative", "tottime"):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats(sort_key).print_stats(top)
        print(f"----- cProfile of one in-memory TFMA run, by {sort_key} -----\n{buffer.getvalue()}",
              file=sys.stderr)


def breakdown_configs() -> dict:
    """EvalConfig variants that isolate stages: what each removes is the cost of that stage.

    * ``full``: the pipeline's config.
    * ``no_hausdorff``: the same without Hausdorff distances.
    * ``overall_slice_only``: the same metrics on the overall slice alone (no per-slice repetition).
    * ``example_count_only``: no segmentation metric: reading, inference, slicing, Beam and writing.
    """
    import tensorflow_model_analysis as tfma

    from components.evaluator.eval_config import build_eval_config

    overall_only = build_eval_config(LABEL_MAP, 0.0, 1.0)
    del overall_only.slicing_specs[:]
    overall_only.slicing_specs.append(tfma.SlicingSpec())
    count_only = build_eval_config(LABEL_MAP, 0.0, 1.0)
    del count_only.metrics_specs[0].metrics[1:]
    return {"full": build_eval_config(LABEL_MAP, 0.0, 1.0),
            "no_hausdorff": build_eval_config(LABEL_MAP, 0.0, 1.0, hausdorff=False),
            "overall_slice_only": overall_only,
            "example_count_only": count_only}


def run_breakdown(layout: dict[str, Path], tmp: Path) -> dict[str, float]:
    """Times each :func:`breakdown_configs` variant once in-memory; returns seconds per variant."""
    seconds = {}
    for name, eval_config in breakdown_configs().items():
        start = time.perf_counter()
        try:
            run_tfma(layout, tmp / f"breakdown_{name}", _mode_args("in_memory", 1), eval_config)
        except KeyError:  # example_count_only has no mIoU to read back
            pass
        seconds[name] = round(time.perf_counter() - start, 3)
        _progress(f"breakdown (in_memory) {name}: {seconds[name]:.2f} s")
    return seconds


def time_rounds(layout: dict[str, Path], val_files: list[str], modes: list[str], args: argparse.Namespace,
                label: str, tfma_repeats: int | None = None):
    """Times the baseline and TFMA in each mode, interleaved, so that load from other processes affects
    all alike; the baseline runs more often (it is cheap).

    Returns:
        ``(baseline_times, baseline_mious, baseline_stages, tfma_times_by_mode, tfma_mious_by_mode)``.
    """
    tfma_repeats = tfma_repeats or args.tfma_repeats
    baseline_times, baseline_mious, baseline_stages = [], [], []
    tfma_times: dict[str, list[float]] = {mode: [] for mode in modes}
    tfma_mious: dict[str, list[float]] = {mode: [] for mode in modes}
    baseline_per_round = -(-args.baseline_repeats // tfma_repeats)
    for round_index in range(tfma_repeats):
        for _ in range(min(baseline_per_round, args.baseline_repeats - len(baseline_times))):
            start = time.perf_counter()
            miou, stages = run_baseline(val_files, layout["model"] / "Format-Serving", args.batch_size)
            baseline_times.append(time.perf_counter() - start)
            baseline_mious.append(miou)
            baseline_stages.append(stages)
            _progress(f"[{label}] baseline {len(baseline_times)}: {baseline_times[-1]:.2f} s, mIoU {miou:.6f}; "
                      + ", ".join(f"{name} {sec:.2f} s" for name, sec in stages.items()))
        for mode in modes:
            output_dir = layout["examples"].parent.parent / f"tfma_{round_index}_{mode}"
            start = time.perf_counter()
            miou = run_tfma(layout, output_dir, _mode_args(mode, args.workers))
            tfma_times[mode].append(time.perf_counter() - start)
            tfma_mious[mode].append(miou)
            shutil.rmtree(output_dir, ignore_errors=True)
            _progress(f"[{label}] TFMA {mode} {round_index + 1}/{tfma_repeats}: {tfma_times[mode][-1]:.2f} s, "
                      f"mIoU {miou:.6f}")
    return baseline_times, baseline_mious, baseline_stages, tfma_times, tfma_mious


def make_subset_layout(tmp: Path, layout: dict[str, Path], val_files: list[str],
                       num_examples: int) -> tuple[dict[str, Path], list[str]]:
    """An artifact layout whose ``val`` split holds the first ``num_examples`` val records (same model)."""
    subset = tmp / "subset"
    (subset / "examples" / "val").mkdir(parents=True)
    records = tf.data.TFRecordDataset(val_files, compression_type="GZIP").take(num_examples)
    subset_file = str(subset / "examples" / "val" / "data_tfrecord-00000-of-00001.gz")
    with tf.io.TFRecordWriter(subset_file, options="GZIP") as writer:
        for record in records.as_numpy_iterator():
            writer.write(record)
    os.symlink(tmp / "examples" / "train", subset / "examples" / "train")
    return {**make_artifact_layout(subset), "model": layout["model"]}, [subset_file]


def check_mious_agree(baseline_mious: list[float], tfma_mious: dict[str, list[float]]) -> float:
    """Raises unless every TFMA and baseline mIoU equals the first baseline one (to MIOU_TOLERANCE)."""
    baseline_miou = baseline_mious[0]
    for mode, values in tfma_mious.items():
        for value in values + baseline_mious:
            if abs(value - baseline_miou) > MIOU_TOLERANCE:
                raise AssertionError(f"mIoU disagrees: TFMA {mode} gives {value!r}, framework-free {baseline_miou!r}")
    return baseline_miou


def fit_fixed_and_per_example(measurements: dict[str, tuple[int, float, int, float]]) -> dict:
    """Fits ``seconds = fixed + n * per_example`` through two sizes for each path; says where TFMA's
    time reaches twice the baseline's (``None`` if it never does)."""
    fitted = {}
    for name, (small_n, small_seconds, large_n, large_seconds) in measurements.items():
        per_example = (large_seconds - small_seconds) / (large_n - small_n)
        fitted[name] = {"fixed_seconds": round(small_seconds - small_n * per_example, 3),
                        "per_example_ms": round(per_example * 1e3, 3)}
    tfma, baseline = fitted["tfma"], fitted["baseline"]
    slack = 2 * baseline["per_example_ms"] - tfma["per_example_ms"]
    excess = tfma["fixed_seconds"] - 2 * baseline["fixed_seconds"]
    fitted["examples_for_ratio_2"] = (max(0, round(excess * 1e3 / slack)) if slack > 0 else None)
    return fitted


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def _mode_args(mode: str, workers: int) -> list[str]:
    """The Beam arguments a local pipeline run gives the Evaluator in this running mode."""
    from components.beam_options import LOCAL_WORKER_ENVIRONMENT_FLAG, direct_runner_args

    return direct_runner_args(mode, workers) + [LOCAL_WORKER_ENVIRONMENT_FLAG]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1610, help="synthetic VOC images generated")
    parser.add_argument("--val-fraction", type=float, default=0.9, help="share of images in the val split")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="DirectRunner workers in multi_processing mode (the pipeline: one per core)")
    parser.add_argument("--modes", default="in_memory,multi_processing",
                        help="comma-separated DirectRunner modes to time; the first is the headline")
    parser.add_argument("--tfma-repeats", type=int, default=3)
    parser.add_argument("--baseline-repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16, help="baseline inference batch size")
    parser.add_argument("--small-examples", type=int, default=256,
                        help="also time the headline mode on the first N val examples (fixed-cost fit)")
    parser.add_argument("--profile", action="store_true", help="also cProfile one in-memory TFMA run")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time stage-isolating EvalConfig variants once each, in-memory")
    args = parser.parse_args()
    if args.tfma_repeats < 1 or args.baseline_repeats < 1:
        parser.error("--tfma-repeats and --baseline-repeats must be at least 1")
    if not 0 < args.small_examples < round(args.images * args.val_fraction):
        parser.error("--small-examples must be positive and below the number of val examples")
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    image_size = (args.height, args.width)

    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp_name:
        tmp = Path(tmp_name)
        # TFX's BaseBeamExecutor builds a throw-away TFX sdist in a fresh mkdtemp() on every run, and Beam
        # stages files there too: keep all of it inside the folder that is deleted at the end.
        (tmp / "scratch").mkdir()
        tempfile.tempdir = os.environ["TMPDIR"] = str(tmp / "scratch")
        started = time.perf_counter()
        _progress(f"set-up: writing {args.images} synthetic VOC images of {args.width}x{args.height} and ingesting them")
        data = make_examples(tmp, args.images, image_size, args.val_fraction)
        counts = {split: info["written"] for split, info in data["report"]["splits"].items()}
        train_pattern = str(tmp / "examples" / "train" / "*")
        val_files = sorted(tf.io.gfile.glob(str(tmp / "examples" / "val" / "*")))
        _progress(f"set-up: ingested {counts}; running tf.Transform on train")
        make_transform_graph(train_pattern, tmp / "transform", tmp / "tft_tmp")
        layout = make_artifact_layout(tmp)
        make_model(tmp / "transform", layout["model"] / "Format-Serving")
        _progress(f"set-up done in {time.perf_counter() - started:.1f} s")

        load_before = os.getloadavg()[0]
        timings = time_rounds(layout, val_files, modes, args, label=f"{counts['val']} examples")
        small_layout, small_files = make_subset_layout(tmp, layout, val_files, args.small_examples)
        small = time_rounds(small_layout, small_files, modes[:1], args, label=f"{args.small_examples} examples",
                            tfma_repeats=max(1, args.tfma_repeats - 1))
        load_after = os.getloadavg()[0]

        breakdown = run_breakdown(layout, tmp) if args.breakdown else None
        if args.profile:
            profile_tfma(layout, tmp / "tfma_profile")

    baseline_times, baseline_mious, baseline_stages, tfma_times, tfma_mious = timings
    baseline_miou = check_mious_agree(baseline_mious, tfma_mious)
    small_baseline_times, small_baseline_mious, _, small_tfma_times, small_tfma_mious = small
    check_mious_agree(small_baseline_mious, small_tfma_mious)

    baseline = statistics.median(baseline_times)
    medians = {mode: statistics.median(times) for mode, times in tfma_times.items()}
    headline = modes[0]
    value = medians[headline]
    stage_medians = {name: round(statistics.median(s[name] for s in baseline_stages), 3)
                     for name in baseline_stages[0]}
    small_baseline = statistics.median(small_baseline_times)
    small_value = statistics.median(small_tfma_times[headline])
    scaling = fit_fixed_and_per_example(
        {"tfma": (args.small_examples, small_value, counts["val"], value),
         "baseline": (args.small_examples, small_baseline, counts["val"], baseline)})
    _progress(f"framework-free: {baseline:.2f} s (median of {args.baseline_repeats}); "
              + "; ".join(f"TFMA {mode}: {seconds:.2f} s = {seconds / baseline:.1f}x (median of "
                          f"{args.tfma_repeats})" for mode, seconds in medians.items()))
    _progress(f"{args.small_examples} examples: framework-free {small_baseline:.2f} s, TFMA {headline} "
              f"{small_value:.2f} s = {small_value / small_baseline:.1f}x; fitted {scaling}")
    print(json.dumps({
        "name": "tfma_eval_vs_framework_free",
        "value": round(value, 3),
        "baseline": round(baseline, 3),
        "ratio": round(value / baseline, 2),
        "ratio_definition": "value / baseline (TFMA time over framework-free time); lower is better, goal <= 2",
        "unit": "s",
        "examples": counts["val"],
        "image_size": f"{args.width}x{args.height}",
        "model_input_size": f"{MODEL_IMAGE_SIZE[1]}x{MODEL_IMAGE_SIZE[0]}",
        "runner": "DirectRunner",
        "runner_mode": headline,
        "workers": args.workers if headline != "in_memory" else 1,
        "tfma_seconds_by_mode": {mode: round(seconds, 3) for mode, seconds in medians.items()},
        "ratio_by_mode": {mode: round(seconds / baseline, 2) for mode, seconds in medians.items()},
        "tfma_miou": tfma_mious[headline][0],
        "tfma_miou_by_mode": {mode: values[0] for mode, values in tfma_mious.items()},
        "baseline_miou": baseline_miou,
        "miou_tolerance": MIOU_TOLERANCE,
        "baseline_stage_seconds": stage_medians,
        "baseline_batch_size": args.batch_size,
        "repeats": {"value": args.tfma_repeats, "baseline": args.baseline_repeats},
        "cpus": os.cpu_count(),
        "small_set": {"examples": args.small_examples, "value": round(small_value, 3),
                      "baseline": round(small_baseline, 3), "ratio": round(small_value / small_baseline, 2)},
        "scaling": scaling,
        "load_average_1min": {"before": round(load_before, 2), "after": round(load_after, 2)},
        **({"breakdown_in_memory_seconds": breakdown} if breakdown else {}),
    }))


if __name__ == "__main__":
    main()
