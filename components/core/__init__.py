"""Framework-free core: label maps, datasets, metrics, models and losses (no tfx, apache_beam or mlflow imports)."""
