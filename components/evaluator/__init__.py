"""TFMA adapters: segmentation metrics and the eval config."""
