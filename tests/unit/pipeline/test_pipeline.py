"""create_pipeline(): the components, how they are wired, and the Beam arguments each one gets."""

from __future__ import annotations

import json

from components.core import sample_data
from pipeline.config import DEFAULT_CONFIG, load_config
from components.beam_options import LOCAL_WORKER_ENVIRONMENT_FLAG, local_component_args, local_pipeline_args
from pipeline.pipeline import create_pipeline


def _pipeline(tmp_path, **kwargs):
    config = load_config(DEFAULT_CONFIG)
    return create_pipeline(config, data_dir=str(tmp_path / "data"), pipeline_root=str(tmp_path / "root"),
                           serving_model_dir=str(tmp_path / "serving"), tracking_uri="sqlite:///x.db", **kwargs)


EVALUATOR_BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")


def test_components_are_wired_from_ingestion_to_tracking(tmp_path):
    sample_data.write_voc_dataset(tmp_path / "data", num_images=4, image_size=(16, 16))
    pipeline = _pipeline(tmp_path, beam_pipeline_args=["--direct_running_mode=multi_processing"],
                         component_beam_pipeline_args={"Evaluator": EVALUATOR_BEAM_ARGS})
    by_id = {component.id: component for component in pipeline.components}
    assert set(by_id) == {"SegmentationExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                          "Transform", "Trainer", "TFLiteExport", "latest_blessed_model_resolver", "Evaluator",
                          "EvaluationReport", "Pusher", "MlflowTracker"}
    assert by_id["Trainer"].inputs["transform_graph"].producer_component_id == "Transform"
    assert by_id["Evaluator"].inputs["baseline_model"].producer_component_id == "latest_blessed_model_resolver"
    assert by_id["Pusher"].inputs["model_blessing"].producer_component_id == "Evaluator"
    assert by_id["Pusher"].inputs["tflite_models"].producer_component_id == "TFLiteExport"
    assert by_id["TFLiteExport"].inputs["model"].producer_component_id == "Trainer"
    assert by_id["TFLiteExport"].inputs["examples"].producer_component_id == "SegmentationExampleGen"
    assert by_id["TFLiteExport"].exec_properties["train_split"] == "train"
    assert by_id["TFLiteExport"].exec_properties["eval_split"] == "val"
    assert json.loads(by_id["TFLiteExport"].exec_properties["export_config"])["max_miou_drop"] == 0.01
    # Pipeline-wide Beam arguments come first, the Evaluator's own override them.
    assert by_id["Evaluator"].executor_spec.beam_pipeline_args[-2:] == list(EVALUATOR_BEAM_ARGS)
    assert by_id["Transform"].executor_spec.beam_pipeline_args == ["--direct_running_mode=multi_processing"]


def test_local_beam_arguments_use_every_core_and_skip_the_tfx_package_build():
    config = load_config(DEFAULT_CONFIG, ["runtime.beam_workers=3"])
    assert local_pipeline_args(config.runtime) == ["--direct_running_mode=multi_processing", "--direct_num_workers=3",
                                          LOCAL_WORKER_ENVIRONMENT_FLAG]
    assert local_component_args(config.runtime) == {
        "Evaluator": EVALUATOR_BEAM_ARGS,
        "SegmentationExampleGen": ("--direct_running_mode=multi_threading", "--direct_num_workers=3")}
    in_memory = load_config(DEFAULT_CONFIG, ["runtime.beam_mode=in_memory"])
    assert local_pipeline_args(in_memory.runtime)[:2] == ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def test_local_runs_take_runtime_beam():
    extra = load_config(DEFAULT_CONFIG, ["runtime.beam.args=[--max_num_records=5]"])
    assert local_pipeline_args(extra.runtime)[-1] == "--max_num_records=5"  # after the runner's own, so it wins
    assert all(args[-1] == "--max_num_records=5" for args in local_component_args(extra.runtime).values())
    dask = load_config(DEFAULT_CONFIG, ["runtime.beam.runner=apache_beam.runners.dask.dask_runner.DaskRunner",
                                        "runtime.beam.args=[--dask_client_address=127.0.0.1:8786]"])
    # Another runner: no DirectRunner option, no DirectRunner-only worker environment, no per-component mode.
    assert local_pipeline_args(dask.runtime) == ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner",
                                                 "--dask_client_address=127.0.0.1:8786"]
    assert local_component_args(dask.runtime) == {}


def test_every_shipped_config_builds_a_pipeline_on_its_generated_data(tmp_path):
    from pipeline.config import CONFIGS_DIR
    from pipeline.local_runner import generate_synthetic_data

    configs = sorted(CONFIGS_DIR.glob("*.yaml"))
    assert {path.name for path in configs} >= {"voc_unet.yaml", "cityscapes_unet.yaml"}
    for path in configs:
        config = load_config(path, ["data.synthetic_images=4"])
        data_root = generate_synthetic_data(config, tmp_path / path.stem)
        pipeline = create_pipeline(config, data_dir=str(data_root), pipeline_root=str(tmp_path / "root"),
                                   serving_model_dir=str(tmp_path / "serving"), tracking_uri="sqlite:///x.db")
        example_gen = next(c for c in pipeline.components if c.id == "SegmentationExampleGen")
        assert example_gen.split_names == tuple(config.data.splits), path.name
