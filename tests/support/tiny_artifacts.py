"""Tiny real TFX artifacts for adapter tests: ingested VOC examples, a schema and a tf.Transform graph.

Built with the project's own ingestion and `preprocessing_fn` on a few generated 32x32 images (Beam
in-memory, a few seconds), laid out as the Trainer receives them, so adapter tests run the real code
paths without a pipeline.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path

IMAGE_SIZE = (32, 32)
NUM_IMAGES = 8


@dataclass(frozen=True)
class TinyArtifacts:
    """Folders laid out as TFX artifacts (Examples with `Split-train`/`Split-val`, Schema, TransformGraph)."""

    examples: Path
    schema: Path
    transform_graph: Path


def build_tiny_artifacts(root: Path) -> TinyArtifacts:
    """Generates, ingests and analyses a tiny VOC dataset under `root`."""
    from components.core import sample_data
    from components.core.config import PipelineConfig
    from components.example_gen.ingest import ingest
    from components.transform.preprocessing import transform_custom_config
    from pipeline.pipeline import raw_schema_path
    from tfx.utils import io_utils
    from tensorflow_metadata.proto.v0 import schema_pb2

    sample_data.write_voc_dataset(root / "voc", num_images=NUM_IMAGES, image_size=IMAGE_SIZE, seed=1)
    ingest("voc", str(root / "voc"), str(root / "ingested"), splits=("train", "val"), strict=True,
           beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    examples = root / "examples"
    for split in ("train", "val"):
        shutil.copytree(root / "ingested" / split, examples / f"Split-{split}")
    schema_dir = root / "schema"
    schema_dir.mkdir()
    shutil.copyfile(raw_schema_path(), schema_dir / "schema.pbtxt")
    schema = io_utils.parse_pbtxt_file(str(schema_dir / "schema.pbtxt"), schema_pb2.Schema())
    config = PipelineConfig.from_dict({"model": {"image_size": list(IMAGE_SIZE)}})
    transform_dir = write_transform_graph(str(examples / "Split-train" / "*"), schema, root / "transform_graph",
                                          transform_custom_config(config, num_classes=21))
    return TinyArtifacts(examples=examples, schema=schema_dir, transform_graph=transform_dir)


def write_transform_graph(train_pattern: str, schema, out_dir: Path, custom_config: dict) -> Path:
    """Analyses the raw examples of `train_pattern` with the project's `preprocessing_fn` (real tf.Transform on
    Beam in memory) and writes the transform graph to `out_dir`, laid out as the Transform component does."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.public import tfxio

    from components.transform.preprocessing import preprocessing_fn

    raw_tfxio = tfxio.TFExampleRecord(file_pattern=train_pattern, schema=schema)
    fn = functools.partial(preprocessing_fn, custom_config=custom_config)
    with beam.Pipeline(argv=["--direct_running_mode=in_memory"]) as pipeline, \
            tft_beam.Context(temp_dir=str(out_dir.parent / f"{out_dir.name}_tmp")):
        raw = pipeline | "Read" >> raw_tfxio.BeamSource()
        transform_fn = (raw, raw_tfxio.TensorAdapterConfig()) | "Analyze" >> tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | "Write" >> tft_beam.WriteTransformFn(str(out_dir))
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema),
                               str(out_dir / tft.TFTransformOutput.RAW_METADATA_DIR))
    return out_dir


def trainer_fn_args(artifacts: TinyArtifacts, work: Path, custom_config: dict, train_steps: int,
                    eval_steps: int = 1):
    """The `FnArgs` TFX's Trainer executor gives `run_fn` for these artifacts (built by TFX's own helper)."""
    from tfx.components.trainer import fn_args_utils
    from tfx.proto import trainer_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import json_utils, proto_utils

    examples = standard_artifacts.Examples()
    examples.uri = str(artifacts.examples)
    examples.split_names = '["train", "val"]'
    schema = standard_artifacts.Schema()
    schema.uri = str(artifacts.schema)
    transform_graph = standard_artifacts.TransformGraph()
    transform_graph.uri = str(artifacts.transform_graph)
    exec_properties = {
        "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=["train"], num_steps=train_steps)),
        "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(splits=["val"], num_steps=eval_steps)),
        "custom_config": json_utils.dumps(custom_config),
    }
    fn_args = fn_args_utils.get_common_fn_args(
        {"examples": [examples], "schema": [schema], "transform_graph": [transform_graph]}, exec_properties,
        working_dir=str(work / "working"))
    fn_args.serving_model_dir = str(work / "model" / "Format-Serving")
    fn_args.model_run_dir = str(work / "model_run")
    return fn_args


def train_tiny_model(artifacts: TinyArtifacts, work: Path) -> Path:
    """A tiny U-Net trained 4 steps by the Trainer's `run_fn`; returns the Model artifact folder
    (`Format-Serving` holds the serving SavedModel)."""
    from components.core.config import PipelineConfig
    from components.trainer.run import run_fn, trainer_custom_config

    config = PipelineConfig.from_dict({
        "model": {"image_size": list(IMAGE_SIZE), "unet": {"base_filters": 4, "depth": 2}},
        "training": {"epochs": 1, "steps_per_epoch": 4, "batch_size": 2, "seed": 0}})
    run_fn(trainer_fn_args(artifacts, work, trainer_custom_config(config, "pascal_voc"), train_steps=4))
    return work / "model"


def export_tiny_tflite_models(artifacts: TinyArtifacts, model_dir: Path, out_dir: Path) -> dict:
    """Runs the TFLiteExport executor as TFX runs it on a trained tiny model; returns the output artifact,
    its folder, its side JSON and the model folder."""
    import json
    import os

    from tfx.types import standard_artifacts

    from components import artifacts as artifact_types
    from components.tflite_export.component import TFLiteExport

    model = standard_artifacts.Model()
    model.uri = str(model_dir)
    examples = standard_artifacts.Examples()
    examples.uri = str(artifacts.examples)
    examples.split_names = '["train", "val"]'
    output = artifact_types.TFLiteModels()
    output.uri = str(out_dir)
    config = {"calibration_examples": 3, "max_miou_drop": 1.0, "latency_runs": 2, "num_threads": 1}
    executor = TFLiteExport.EXECUTOR_SPEC.executor_class()
    executor.Do({"model": [model], "examples": [examples]}, {"tflite_models": [output]},
                {"label_map": "pascal_voc", "train_split": "train", "eval_split": "val", "resize": "fit",
                 "export_config": json.dumps(config)})
    with open(os.path.join(output.uri, artifact_types.TFLITE_METADATA_FILE), encoding="utf-8") as stream:
        document = json.load(stream)
    return {"artifact": output, "dir": output.uri, "json": document, "model": model_dir}
