"""The MLflow pyfunc model of a pushed segpipe model: image bytes in, class-id masks out.

This file is logged with the model ("models from code"): MLflow copies it next to the serving SavedModel
and runs it on load, so it imports only TensorFlow, NumPy, pandas and MLflow, never segpipe itself; a
registered version loads and serves wherever those are installed:

    model = mlflow.pyfunc.load_model("models:/<registered model>@champion")
    masks = model.predict(pandas.DataFrame({"image": [open("street.jpg", "rb").read()]}))

`predict` takes a DataFrame with an `image` column of encoded JPEG or PNG bytes (`mlflow models serve`
accepts them base64-encoded) and returns one `uint8` array of class ids per image, at the image's own size.
"""

from __future__ import annotations

import base64

import mlflow
import numpy as np
import pandas as pd

SAVED_MODEL_ARTIFACT = "saved_model"
"""Name of the pyfunc artifact holding the serving SavedModel."""

IMAGE_COLUMN = "image"
"""The input column of encoded image bytes."""

SIGNATURE = "serving_default"
"""The SavedModel's image-bytes signature: `images` [B] -> `class_ids` [B, H, W] and `probabilities`."""


class SegmentationModel(mlflow.pyfunc.PythonModel):
    """Runs the SavedModel's image-bytes signature on each image of the input."""

    def load_context(self, context):
        import tensorflow as tf

        self._saved_model = tf.saved_model.load(context.artifacts[SAVED_MODEL_ARTIFACT])
        self._signature = self._saved_model.signatures[SIGNATURE]

    # The `pd.DataFrame` hint is one MLflow infers no schema from (the logged signature describes the input:
    # an `image` column of bytes); without any hint MLflow 3 warns at every class definition, under a
    # warning filter of its own that overrides the caller's.
    def predict(self, context, model_input: pd.DataFrame, params=None):
        """One class-id mask (`uint8`, the image's height x width) per row of `model_input`."""
        import tensorflow as tf

        images = model_input[IMAGE_COLUMN] if isinstance(model_input, pd.DataFrame) else model_input
        masks = []
        for image in images:
            encoded = base64.b64decode(image) if isinstance(image, str) else bytes(image)
            served = self._signature(images=tf.constant([encoded]))
            masks.append(served["class_ids"].numpy()[0].astype(np.uint8))
        return masks


mlflow.models.set_model(SegmentationModel())
