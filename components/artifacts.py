"""What the adapters share about each other's outputs: file names inside TFX artifacts, and artifact types.

One component writes each of these and another reads it (the tracker reads the Trainer's history, for
example); both name it from here, so no adapter imports another adapter for a constant.
"""

from tfx.types import artifact

INGESTION_REPORT_FILE = "ingestion_report.json"
"""Beside the examples (ExampleGen) or in the output folder (`segpipe ingest`): counts per split and the
quarantined pairs with their reasons."""

HISTORY_FILE = "history.json"
"""In the Trainer's model-run folder: `{metric: [value per epoch]}`, learning rate included."""

BEST_WEIGHTS = "checkpoints/best.weights"
"""In the Trainer's model-run folder: the weights of the epoch with the best validation mIoU."""

TENSORBOARD_DIR = "logs"
"""In the Trainer's model-run folder: TensorBoard logs."""

SERVE_IMAGES = "serving_default"
"""Signature of the served model: encoded images -> class ids and probabilities at each image's size."""

SERVE_EXAMPLES = "serve_examples"
"""Signature of the served model: serialized examples -> class ids, probabilities, content size (TFMA's)."""

TRANSFORM_FEATURES = "transform_features"
"""Signature of the served model: serialized examples -> the transformed features."""

SLICE_FEATURES = "slice_features"
"""Signature of the served model: serialized examples -> the derived feature TFMA slices on."""

SERVING_MODEL_DIR = "Format-Serving"
"""In a Trainer's Model artifact: the serving SavedModel (TFX's own folder name)."""

MODEL_INFO_FILE = "segpipe_model.json"
"""Beside the served SavedModel: label map, class names and colours, input size, ignore label."""


TFLITE_FILES = {"float32": "model_float32.tflite", "dynamic_range": "model_dynamic_range.tflite",
                "int8": "model_int8.tflite"}
"""In a TFLiteModels artifact: the accepted TFLite model of each variant (`components.core.tflite.VARIANTS`)."""

TFLITE_REFUSED_DIR = "refused"
"""In a TFLiteModels artifact: models beyond the accepted mIoU loss, kept for inspection only (never pushed)."""

TFLITE_METADATA_FILE = "tflite_models.json"
"""In a TFLiteModels artifact: per variant its file (or refusal), scores, size and latency; the input's
normalisation and quantization parameters; the class names and colours (the mobile application's side file)."""


class TFLiteModels(artifact.Artifact):
    """A folder of TFLite models of one trained model and their side JSON, written by TFLiteExport."""

    TYPE_NAME = "segpipe.TFLiteModels"


class SegmentationReport(artifact.Artifact):
    """A folder of evaluation report files (tables, confusion matrix, overlays), written by EvaluationReport."""

    TYPE_NAME = "segpipe.SegmentationReport"  # "<namespace>.<Name>", as Kubeflow requires
