"""tf.Transform preprocessing_fn: decoding, resizing and normalising images and masks.

Beam worker processes of the Transform component import this package (they unpickle closures over
`preprocessing_fn`) but run none of segpipe's own DoFns, so this is where such a worker of a quiet run
hides TensorFlow's finalizer noise at exit (`log_setup.quiet_beam_worker`: a no-op unless the run is quiet).
"""

from components.log_setup import quiet_beam_worker as _quiet_beam_worker

_quiet_beam_worker()
