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
    ("model.image_size=[30, 32]", "'model.image_size' must be [height, width], each divisible by 2**depth = 8"),
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
