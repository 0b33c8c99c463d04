"""tf.Transform preprocessing_fn: decoding, resizing and normalising images and masks."""
