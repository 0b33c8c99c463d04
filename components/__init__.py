"""segpipe's components: framework-free core code and thin TFX, Beam and MLflow adapters over it."""
