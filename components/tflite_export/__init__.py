"""TFX adapter: the TFLite models of every trained model, converted and evaluated inside the pipeline."""
