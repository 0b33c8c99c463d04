"""Typed configuration: YAML loading, overrides, and clear errors for unknown keys and bad values."""

from __future__ import annotations

import pytest

from pipeline.config import DEFAULT_CONFIG, ConfigError, PipelineConfig, load_config


def test_default_config_loads_and_round_trips_through_a_dict():
    config = load_config(DEFAULT_CONFIG)
    assert config.data.format == "voc"
    assert config.model.image_size == (64, 64)
    assert PipelineConfig.from_dict(config.to_dict()) == config


def test_overrides_are_parsed_as_yaml_values():
    config = load_config(DEFAULT_CONFIG, ["training.epochs=2", "model.image_size=[32, 48]",
                                          "evaluation.miou_threshold=0.5", "runtime.enable_cache=true"])
    assert config.training.epochs == 2
    assert config.model.image_size == (32, 48)
    assert config.evaluation.miou_threshold == 0.5
    assert config.runtime.enable_cache is True


def test_flat_names_every_value_once():
    flat = load_config(DEFAULT_CONFIG).flat()
    assert flat["training.batch_size"] == 8
    assert flat["data.splits"] == ["train", "val"]


@pytest.mark.parametrize("override, message", [
    ("training.epochz=3", "unknown key 'training.epochz'"),
    ("trainin.epochs=3", "unknown key 'trainin'"),
    ("training.epochs=three", "'training.epochs' must be an integer"),
    ("training.epochs=0", "'training.epochs' must be at least 1"),
    ("data.format=coco", "'data.format' must be 'voc' or 'cityscapes'"),
    ("model.image_size=[30, 32]", "'model.image_size' must be [height, width], each divisible by 2**depth = 16"),
    ("model.image_size=[32]", "'model.image_size' must have 2 items"),
    ("runtime.enable_cache=maybe", "'runtime.enable_cache' must be true or false"),
    ("evaluation.miou_threshold=2", "'evaluation.miou_threshold' must be in [0, 1]"),
    ("epochs=3", "expected section.key=value"),
    ("runtime.pipeline_name=My_Pipeline", "'runtime.pipeline_name' must be lower-case letters, digits and '-'"),
])
def test_bad_values_are_errors_naming_the_key(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(DEFAULT_CONFIG, [override])
    assert message in str(error.value)


def test_missing_file_and_non_mapping_are_errors_naming_the_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=f"{bad}: expected a mapping"):
        load_config(bad)


def test_overrides_reach_keys_at_any_depth():
    config = load_config(DEFAULT_CONFIG, ["model.unet.depth=2", "training.optimizer.name=sgd",
                                          "training.schedule.warmup_steps=5"])
    assert config.model.unet.depth == 2
    assert config.training.optimizer.name == "sgd"
    assert config.training.schedule.warmup_steps == 5
    assert load_config(DEFAULT_CONFIG).flat()["model.unet.base_filters"] == 16


@pytest.mark.parametrize("override, message", [
    ("model.unet.depht=2", "unknown key 'model.unet.depht'"),
    ("model.unet=3", "'model.unet' must be a mapping"),
    ("training.optimizer.name=lamb", "'training.optimizer.name' must be 'adam' or 'sgd'"),
    ("training.schedule.name=step", "'training.schedule.name' must be 'cosine', 'poly' or 'constant'"),
    ("training.schedule.warmup_steps=1200", "'training.schedule.warmup_steps' must be fewer than the 1200 training steps"),
    ("model..depth=2", "expected section.key=value"),
    ("runtime.beam.runner=Dataflow", "'runtime.beam.runner' must be one of DirectRunner, DataflowRunner"),
    ("runtime.beam.runner=dask", "or a runner's full class name (module.path.ClassName), got 'dask'"),
    ("runtime.beam.args=[runner=x]", "'runtime.beam.args' must hold Beam options written --name=value or --flag, "
                                     "got 'runner=x'"),
    ("runtime.beam.args=[--runner=FlinkRunner]", "'runtime.beam.args' must not set the runner ('--runner=FlinkRunner'): "
                                                 "set runtime.beam.runner"),
    ("runtime.beam.args=--project=p", "'runtime.beam.args' must be a list"),
    ("runtime.beam.runer=DirectRunner", "unknown key 'runtime.beam.runer'"),
])
def test_bad_nested_values_are_errors_naming_the_whole_key(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(DEFAULT_CONFIG, [override])
    assert message in str(error.value)


def test_dataflow_needs_its_project_region_and_temp_location_named_in_the_file(tmp_path):
    (tmp_path / "dataflow.yaml").write_text("runtime:\n  beam:\n    runner: DataflowRunner\n"
                                           "    args: [--project=p]\n")
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "dataflow.yaml")
    assert str(error.value) == (f"{tmp_path / 'dataflow.yaml'}: 'runtime.beam.args' must set --region, "
                                "--temp_location for DataflowRunner")
    config = load_config(tmp_path / "dataflow.yaml", ["runtime.beam.args=[--project=p, --region=r, --temp_location=gs://b/t]"])
    assert (config.runtime.beam.runner, config.runtime.beam.is_direct) == ("DataflowRunner", False)
    assert config.runtime.beam.args == ("--project=p", "--region=r", "--temp_location=gs://b/t")


def test_an_experiment_file_holds_only_what_differs_from_its_base(tmp_path):
    (tmp_path / "base.yaml").write_text("data:\n  format: cityscapes\n  seed: 3\nmodel:\n  image_size: [64, 128]\n")
    (tmp_path / "experiment.yaml").write_text("base: base.yaml\ndata:\n  seed: 5\n")
    config = load_config(tmp_path / "experiment.yaml", ["training.epochs=2"])
    assert (config.data.format, config.data.seed, config.model.image_size, config.training.epochs) == \
        ("cityscapes", 5, (64, 128), 2)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="'base' chain loops back"):
        load_config(tmp_path / "loop.yaml")


def test_shipped_experiment_files_restate_no_default():
    import yaml

    from components.core.hyperparams import flatten
    from pipeline.config import CONFIGS_DIR

    defaults = PipelineConfig().flat()
    for path in sorted(CONFIGS_DIR.glob("*.yaml")):
        own_values = flatten(yaml.safe_load(path.read_text()))
        restated = {key: value for key, value in own_values.items()
                    if key != "model.architecture" and defaults.get(key) == value}
        assert not restated, f"{path.name} restates defaults: {restated}"


def test_an_empty_or_binary_configuration_file_is_an_error_naming_the_file(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=f"{empty}: the file is empty"):
        load_config(empty)
    binary = tmp_path / "picture.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ConfigError, match=f"{binary}: not a text file"):
        load_config(binary)


def test_a_float_written_without_a_dot_is_a_number():
    config = load_config(DEFAULT_CONFIG, ["training.optimizer.learning_rate=1e-4"])
    assert config.training.optimizer.learning_rate == 1e-4
