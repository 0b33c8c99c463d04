"""The same pipeline compiles to a Kubeflow Pipelines v2 spec that kfp itself loads: its components, image,
edges, Beam arguments, and the runtime parameters (with their defaults) wired into component parameters.

The example Kubeflow config on Dataflow is compiled once for the module (about 15 s)."""

from __future__ import annotations

import json

import pytest
import yaml

from components import beam_options
from pipeline.config import CONFIGS_DIR, DEFAULT_CONFIG, load_config
from pipeline.kubeflow_runner import DEFAULT_TRACKING_URI, RUNTIME_PARAMETERS, compile_pipeline

KUBEFLOW_CONFIG = CONFIGS_DIR / "kubeflow_voc_unet_dataflow.yaml"
IMAGE = "registry.example/segpipe:1"
DATA_ROOT = "gs://bucket/VOCdevkit"

RESOLVER_TASKS = {"latest_blessed_model_resolver-model-resolver", "latest_blessed_model_resolver-model-blessing-resolver"}
EDGES = {
    "SegmentationExampleGen": set(),
    "ImportSchemaGen": set(),
    "StatisticsGen": {"SegmentationExampleGen"},
    "ExampleValidator": {"ImportSchemaGen", "StatisticsGen"},
    "Transform": {"ImportSchemaGen", "SegmentationExampleGen"},
    "Trainer": {"ImportSchemaGen", "SegmentationExampleGen", "Transform"},
    "TFLiteExport": {"SegmentationExampleGen", "Trainer"},
    "latest_blessed_model_resolver-model-resolver": set(),
    "latest_blessed_model_resolver-model-blessing-resolver": set(),
    "Evaluator": {"ImportSchemaGen", "SegmentationExampleGen", "Trainer", "latest_blessed_model_resolver-model-resolver"},
    "EvaluationReport": {"Evaluator", "SegmentationExampleGen", "Trainer"},
    "Pusher": {"Evaluator", "TFLiteExport", "Trainer"},
    "MlflowTracker": {"EvaluationReport", "Evaluator", "ExampleValidator", "Pusher", "SegmentationExampleGen",
                      "TFLiteExport", "Trainer"},
}
"""Each task of the compiled DAG and the tasks it depends on (what `create_pipeline` wires)."""

PARAMETER_INPUTS = {
    "SegmentationExampleGen": {"input_base": "data_root"},
    "Trainer": {"training_epochs": "training_epochs", "learning_rate": "learning_rate"},
    "Evaluator": {"miou_threshold": "miou_threshold"},
    "MlflowTracker": {name: name for name in RUNTIME_PARAMETERS},
}
"""Per task, which of its parameters take which runtime parameter of the pipeline."""
BEAM_TASKS = ("SegmentationExampleGen", "StatisticsGen", "Transform", "Evaluator")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The example Kubeflow config (on Dataflow) compiled: its config, the spec as YAML and as kfp loads it."""
    from kfp import components as kfp_components

    config = load_config(KUBEFLOW_CONFIG)
    path = compile_pipeline(config, str(tmp_path_factory.mktemp("kfp") / "segpipe.yaml"), data_dir=DATA_ROOT,
                            pipeline_root="gs://bucket/root", image=IMAGE)
    return {"config": config, "spec": yaml.safe_load(path.read_text()), "text": path.read_text(),
            "component": kfp_components.load_component_from_file(str(path))}


def test_kfp_loads_the_spec_with_its_runtime_parameters_and_their_defaults(compiled):
    config = compiled["config"]
    inputs = compiled["component"].component_spec.inputs
    assert {name: (spec.type, spec.default, spec.optional) for name, spec in inputs.items()} == {
        "data_root": ("String", DATA_ROOT, True),
        "training_epochs": ("Integer", config.training.epochs, True),
        "learning_rate": ("Float", config.training.optimizer.learning_rate, True),
        "miou_threshold": ("Float", config.evaluation.miou_threshold, True),
    }
    assert compiled["component"].name == config.runtime.pipeline_name
    # The header says the same in words.
    assert f"#   training_epochs: int = {config.training.epochs}\n" in compiled["text"]


def test_every_component_is_a_task_with_its_edges(compiled):
    tasks = compiled["spec"]["root"]["dag"]["tasks"]
    assert {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()} == EDGES


def test_every_container_runs_the_given_image_and_the_resolvers_none(compiled):
    spec = compiled["spec"]
    executors = spec["deploymentSpec"]["executors"]
    for name, task in spec["root"]["dag"]["tasks"].items():
        executor = executors[spec["components"][task["componentRef"]["name"]]["executorLabel"]]
        if name in RESOLVER_TASKS:
            assert set(executor) == {"resolver"}, name
        else:
            assert executor["container"]["image"] == IMAGE, name


def test_runtime_parameters_reach_the_components_that_use_them(compiled):
    tasks = compiled["spec"]["root"]["dag"]["tasks"]
    wired = {name: {parameter: value["componentInputParameter"]
                    for parameter, value in task.get("inputs", {}).get("parameters", {}).items()
                    if "componentInputParameter" in value}
             for name, task in tasks.items()}
    assert {name: inputs for name, inputs in wired.items() if inputs} == PARAMETER_INPUTS
    # No runtime parameter was written as a constant inside another parameter (custom_config, a proto).
    assert "RuntimeParameter" not in compiled["text"]
    tracker = tasks["MlflowTracker"]["inputs"]["parameters"]
    assert tracker["tracking_uri"]["runtimeValue"]["constant"] == DEFAULT_TRACKING_URI


def test_beam_stages_run_on_the_configured_runner_in_their_pods(compiled):
    spec = compiled["spec"]
    expected = beam_options.kubeflow_pipeline_args(compiled["config"].runtime)
    assert expected == ["--runner=DataflowRunner", "--project=PROJECT", "--region=europe-west1",
                        "--temp_location=gs://BUCKET/beam-tmp", "--sdk_container_image=REGISTRY/segpipe:0.1.0",
                        "--experiments=use_runner_v2"]
    for name in BEAM_TASKS:
        component = spec["components"][spec["root"]["dag"]["tasks"][name]["componentRef"]["name"]]
        args = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]["args"]
        assert args[-len(expected):] == expected, name


def test_kubeflow_beam_arguments_follow_runtime_beam():
    dataflow = load_config(DEFAULT_CONFIG, [
        "runtime.beam.runner=DataflowRunner",
        "runtime.beam.args=[--project=p, --region=europe-west1, --temp_location=gs://b/tmp]"])
    assert beam_options.kubeflow_pipeline_args(dataflow.runtime) == [
        "--runner=DataflowRunner", "--project=p", "--region=europe-west1", "--temp_location=gs://b/tmp"]
    assert beam_options.kubeflow_pipeline_args(load_config(CONFIGS_DIR / "kubeflow_voc_unet.yaml").runtime) == [
        "--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
    direct = load_config(DEFAULT_CONFIG, ["runtime.beam_workers=4", "runtime.beam.args=[--s3_endpoint_url=http://m:9000]"])
    assert beam_options.kubeflow_pipeline_args(direct.runtime) == [
        "--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=4",
        "--s3_endpoint_url=http://m:9000"]


def test_refuses_a_json_output(tmp_path):
    with pytest.raises(ValueError, match="must be written as .yaml"):
        compile_pipeline(load_config(DEFAULT_CONFIG), str(tmp_path / "segpipe.json"), data_dir="gs://b/d",
                         pipeline_root="gs://b/r", image="segpipe:1")
    assert not (tmp_path / "segpipe.json").exists()


def _executor_properties(compiled, task_name: str, run_values: dict) -> dict:
    """The execution properties TFX's Kubeflow v2 entry point hands the task's executor when a run sets
    `run_values`: each parameter resolved as KFP resolves it (a constant, or the pipeline input), then
    parsed with the inputs spec the compiled container passes (`--json_serialized_inputs_spec_args`)."""
    from google.protobuf import json_format, struct_pb2
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

    spec = compiled["spec"]
    task = spec["root"]["dag"]["tasks"][task_name]
    args = spec["deploymentSpec"]["executors"][spec["components"][task["componentRef"]["name"]]["executorLabel"]][
        "container"]["args"]
    inputs_spec = json_format.Parse(args[args.index("--json_serialized_inputs_spec_args") + 1],
                                    pipeline_spec_pb2.ComponentInputsSpec())
    executor_input = pipeline_spec_pb2.ExecutorInput()
    for name, source in task["inputs"]["parameters"].items():
        value = (source["runtimeValue"]["constant"] if "runtimeValue" in source
                 else run_values[source["componentInputParameter"]])
        executor_input.inputs.parameter_values[name].CopyFrom(json_format.ParseDict(value, struct_pb2.Value()))
    return kubeflow_v2_entrypoint_utils.parse_execution_properties(
        executor_input.inputs.parameter_values, executor_input.inputs.parameters, inputs_spec)


def test_run_values_reach_the_trainer_and_evaluator_executors_typed_as_run_fn_and_tfma_need(compiled):
    import tensorflow_model_analysis as tfma
    from tfx.proto import trainer_pb2
    from tfx.utils import proto_utils

    from components.evaluator.component import apply_miou_threshold
    from components.trainer.component import apply_run_values

    run_values = {"data_root": "gs://other/VOCdevkit", "training_epochs": 3, "learning_rate": 0.02,
                  "miou_threshold": 0.6}
    trainer = apply_run_values(_executor_properties(compiled, "Trainer", run_values))
    training = json.loads(trainer["custom_config"])["training"]
    assert (training["epochs"], training["optimizer"]["learning_rate"]) == (3, 0.02)
    assert isinstance(training["epochs"], int)
    steps = compiled["config"].training.steps_per_epoch
    assert proto_utils.json_to_proto(trainer["train_args"], trainer_pb2.TrainArgs()).num_steps == 3 * steps
    evaluator = apply_miou_threshold(_executor_properties(compiled, "Evaluator", run_values))
    eval_config = proto_utils.json_to_proto(evaluator["eval_config"], tfma.EvalConfig())
    (bound,) = [metric.threshold.value_threshold.lower_bound.value for spec in eval_config.metrics_specs
                for metric in spec.metrics if metric.threshold.HasField("value_threshold")]
    assert bound == pytest.approx(0.6)
    assert _executor_properties(compiled, "SegmentationExampleGen", run_values)["input_base"] == "gs://other/VOCdevkit"
