"""TFX Trainer adapter: input pipeline and run_fn training the segmentation model."""
