"""Training curves logged to MLflow while the model trains: a tf-keras callback, one batch per epoch.

The runner that starts a pipeline run's MLflow run names it to the Trainer through two environment
variables (not the Trainer's `custom_config`, which is its cache key): :data:`RUN_ID_ENV` and
:data:`TRACKING_URI_ENV`. Without them (a Kubeflow run) nothing is logged live, and the tracker logs the
curves from `history.json` at the end. Only the chief logs. A logging failure never stops training: it
is reported once, and the callback stays quiet from then on.
"""

from __future__ import annotations

import logging
import math
import os
import time

import tf_keras as keras

logger = logging.getLogger(__name__)

RUN_ID_ENV = "SEGPIPE_MLFLOW_RUN_ID"
"""The MLflow run the Trainer logs its per-epoch curves into."""

TRACKING_URI_ENV = "SEGPIPE_MLFLOW_TRACKING_URI"
"""The tracking URI of that run."""

METRIC_PREFIX = "train/"
"""The curves' names: `train/loss`, `train/miou`, `train/val_loss`, `train/val_miou`, `train/learning_rate`."""


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs every finite number of each epoch's logs as `train/<name>` at step `epoch` into an MLflow run.

    Put it after the callbacks that add figures to the logs (the learning rate).
    """

    def __init__(self, tracking_uri: str, run_id: str):
        super().__init__()
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.failed = False
        self._client = None

    def on_epoch_end(self, epoch, logs=None):
        if self.failed or not logs:
            return
        try:
            from mlflow.entities import Metric
            from mlflow.tracking import MlflowClient

            if self._client is None:
                self._client = MlflowClient(tracking_uri=self.tracking_uri)
            now_ms = int(time.time() * 1000)
            metrics = [Metric(f"{METRIC_PREFIX}{name}", float(value), now_ms, int(epoch))
                       for name, value in logs.items()
                       if isinstance(value, (int, float)) and math.isfinite(float(value))]
            self._client.log_batch(self.run_id, metrics=metrics)
        except Exception as error:  # pylint: disable=broad-except  # logging must never stop training
            self.failed = True
            logger.warning("MLflow: could not log epoch %d's curves to run %s at %s (%s); training goes on, no "
                           "more curves are logged live, the tracker logs them at the end", epoch + 1, self.run_id,
                           self.tracking_uri, _short_reason(error))


def _short_reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return "Connection refused" if "Connection refused" in text else text[:300] or type(error).__name__


def live_logger_from_environment() -> MlflowEpochLogger | None:
    """The callback for the run named by :data:`RUN_ID_ENV` and :data:`TRACKING_URI_ENV`, or None when unset."""
    run_id, tracking_uri = os.environ.get(RUN_ID_ENV, ""), os.environ.get(TRACKING_URI_ENV, "")
    if not run_id or not tracking_uri:
        return None
    return MlflowEpochLogger(tracking_uri, run_id)
