"""The `SegmentationPusher` TFX component: pushes a blessed model's SavedModel, accepted TFLite models and
manifest to a new versioned folder (`components.pusher.push`); an unblessed model is not pushed.

Its `pushed_model` output carries TFX Pusher's custom properties (`pushed`, `pushed_destination`,
`pushed_version`), so downstream steps read it as they read a TFX Pusher's, and a copy of the manifest.
"""

import json
import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components import artifacts
from components.evaluation_reader import load_metrics_by_slice
from components.pusher.push import push
from components.core import push_manifest


@tfx.dsl.components.component
def SegmentationPusher(
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
    model_blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
    tflite_models: tfx.dsl.components.InputArtifact[artifacts.TFLiteModels],
    evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation],
    pushed_model: tfx.dsl.components.OutputArtifact[standard_artifacts.PushedModel],
    base_directory: tfx.dsl.components.Parameter[str],
    run_context: tfx.dsl.components.Parameter[str] = "{}",
):
    """Pushes `model` to `base_directory/<version>` when `model_blessing` says it is blessed.

    `run_context` is JSON the manifest's `source` carries (pipeline name, MLflow tracking URI, experiment
    and run id when known); the ML Metadata ids and URIs of the inputs are added here.
    """
    if not model_blessing.get_int_custom_property("blessed"):
        pushed_model.set_int_custom_property("pushed", 0)
        return
    overall = load_metrics_by_slice(evaluation.uri).get((), {})
    evaluator_metrics = {name: value for name, value in overall.items() if isinstance(value, float)}
    source = {**json.loads(run_context), "tfx": {
        "model_uri": model.uri, "model_artifact_id": model.id, "blessing_artifact_id": model_blessing.id,
        "evaluation_artifact_id": evaluation.id, "tflite_models_artifact_id": tflite_models.id}}
    destination, manifest = push(os.path.join(model.uri, artifacts.SERVING_MODEL_DIR), tflite_models.uri, base_directory,
                                 evaluator_metrics=evaluator_metrics, source=source)
    tf.io.gfile.makedirs(pushed_model.uri)
    with tf.io.gfile.GFile(os.path.join(pushed_model.uri, push_manifest.MANIFEST_FILE), "w") as stream:
        json.dump(manifest, stream, indent=1)
    pushed_model.set_int_custom_property("pushed", 1)
    pushed_model.set_string_custom_property("pushed_destination", destination)
    pushed_model.set_string_custom_property("pushed_version", manifest["version"])
