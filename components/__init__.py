"""segpipe's components: framework-free core code (`core/`) and thin TFX, Beam and MLflow adapters over it."""
