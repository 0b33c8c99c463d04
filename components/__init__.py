"""segpipe's components: framework-free core code and thin TFX, Beam and MLflow adapters over it."""

import os as _os

if _os.environ.get("SEGPIPE_QUIET") == "1":  # a Beam worker of a quiet run (see components.log_setup)
    from components.log_setup import hide_tensorflow_finalizer_errors as _hide

    _hide()
