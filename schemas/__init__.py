"""Dataset metadata as data: the raw-example schema (`raw_schema.pbtxt`) and the label maps
(`label_maps/<name>.json`), shipped as package data and read through `components.core.label_maps.schemas_dir`."""
