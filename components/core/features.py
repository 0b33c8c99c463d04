"""Names of the features that flow between pipeline stages.

Raw features are what ingestion writes into each `tf.train.Example` (and `schemas/raw_schema.pbtxt`
states); transformed features are what `preprocessing_fn` produces and the model consumes.
"""

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
MASK_ENCODED = "image/segmentation/class/encoded"
MASK_FORMAT = "image/segmentation/class/format"
IMAGE_ID = "image/id"
DATASET = "dataset"
SPLIT = "split"
CITY = "city"
CLASSES_PRESENT = "classes_present"

# Raw features a serving request does not carry.
LABEL_FEATURES = (MASK_ENCODED, MASK_FORMAT, CLASSES_PRESENT)

# Transformed features.
IMAGE = "image"
MASK = "mask"
SIZE_BUCKET = "size_bucket"  # for evaluation slices: the image's longer side, bucketed
CONTENT_SIZE = "content_size"  # rows and columns of the model input the image covers (the rest is padding)
# Constants of the transform graph, repeated for every example ([3] or [num_classes] floats each), so that
# the Trainer reads what the analyzers computed instead of computing it again:
NORMALIZATION_MEAN = "normalization_mean"  # image = (pixels - NORMALIZATION_MEAN) / NORMALIZATION_STD
NORMALIZATION_STD = "normalization_std"
PIXEL_MEAN = "pixel_mean"  # the training split's mean pixel (RGB, 0-255): what image padding is filled with
CLASS_PIXEL_COUNTS = "class_pixel_counts"  # pixels of each class over the training split (255 excluded)
CLASS_WEIGHTS = {  # class weights of each weighting (formulas in components.core.preprocessing)
    "inverse_frequency": "class_weights_inverse_frequency",
    "median_frequency": "class_weights_median_frequency",
}

# Serving outputs.
PROBABILITIES = "probabilities"
CLASS_IDS = "class_ids"
