"""MLflow tracking: the component that logs runs, metrics and models."""
