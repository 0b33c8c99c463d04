"""Which Beam runner each component of the pipeline gets, and the refusal of one it cannot run on (Beam's
Dask runner for any Beam component but the ExampleGen), before anything runs."""

from __future__ import annotations

import pytest

from components import beam_options, dask_cluster
from components.core import sample_data
from pipeline.config import DEFAULT_CONFIG, ConfigError, load_config
from pipeline.local_runner import merged_component_args, split_beam_args
from pipeline.pipeline import create_pipeline

DASK = f"--runner={dask_cluster.DASK_RUNNER}"


def _pipeline(tmp_path, beam_args):
    config = load_config(DEFAULT_CONFIG, [])
    sample_data.write_voc_dataset(tmp_path / "data", num_images=4, image_size=(16, 16), seed=0)
    wide, by_component = split_beam_args(beam_args)
    return create_pipeline(
        config, str(tmp_path / "data"), str(tmp_path / "root"), str(tmp_path / "serving"), "sqlite:///x.db",
        beam_pipeline_args=beam_options.local_pipeline_args(config.runtime) + wide,
        component_beam_pipeline_args=merged_component_args(beam_options.local_component_args(config.runtime),
                                                           by_component))


def test_the_example_gen_alone_may_run_on_dask(tmp_path):
    pipeline = _pipeline(tmp_path, [f"SegmentationExampleGen:{DASK}", "SegmentationExampleGen:--dask_local_workers=2"])
    args = {component.id: component.executor_spec.beam_pipeline_args for component in pipeline.components
            if hasattr(component.executor_spec, "beam_pipeline_args")}
    assert dask_cluster.is_dask_runner(args["SegmentationExampleGen"])
    assert args["SegmentationExampleGen"][-2:] == [DASK, "--dask_local_workers=2"]  # after the local defaults
    assert not any(dask_cluster.is_dask_runner(value) for key, value in args.items() if key != "SegmentationExampleGen")


@pytest.mark.parametrize("beam_args, message", [
    ([DASK], r"^StatisticsGen cannot run on Beam runner apache_beam\.runners\.dask\.dask_runner\.DaskRunner: it reads "
             r"with Beam's file IO \(beam\.io\.Read\)"),
    ([f"Transform:{DASK}"], "^Transform cannot run on Beam runner"),
    ([f"Evaluator:{DASK}"], "^Evaluator cannot run on Beam runner"),
    (["Trainer:--runner=DirectRunner"], r"^Beam arguments for Trainer: no Beam component of the pipeline has that id "
                                        r"\(Beam components: SegmentationExampleGen, StatisticsGen, Transform, Evaluator\)"),
    (["runner=DirectRunner"], "^--beam-arg 'runner=DirectRunner': expected --OPTION=VALUE or COMPONENT:--OPTION=VALUE"),
])
def test_a_runner_a_component_cannot_run_on_is_refused_naming_both(tmp_path, beam_args, message):
    with pytest.raises(ConfigError, match=message):
        _pipeline(tmp_path, beam_args)
