"""Push helpers: exporting serving models."""
