"""TFX adapter: the push of a blessed model (SavedModel, TFLite models, manifest) to a versioned folder."""
