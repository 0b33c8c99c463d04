"""Framework-free model builders (tf-keras): U-Net and the factory that builds the configured network."""
