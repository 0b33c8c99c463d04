"""TensorFlow ops that turn encoded images and masks into model inputs and targets, and the formulas of
the dataset statistics computed over them.

Used inside tf.Transform's `preprocessing_fn` (so that they are embedded in the exported model) and
directly by tests. Images keep their colours and are resized bilinearly; masks are class-index PNGs
resized with nearest neighbour, so that no interpolated, non-existent class id ever appears and the
ignore label (255) stays 255.

Resizing ("fit", "fill" or "stretch") maps an image to the model's input size (h, w). `content_size` is
always the size (rows, cols) the image is scaled to; `place_in_input` puts the scaled image into the input
and `input_indices_of_content` maps back (module functions below, shared by the transform, the serving
signature and the metrics):
- "fit" keeps the aspect ratio, the longer side (relative to the input) fitting: an H x W image is scaled
  by s = min(h / H, w / W) to round(H s) x round(W s) (at least 1 pixel a side) and placed at the top
  left; the rest of the input is padding (the image's fill pixel, the ignore label in the mask). The whole
  image is seen;
- "fill" keeps the aspect ratio, the shorter side fitting: s = max(h / H, w / W), so the scaled image
  covers the input and is cropped to it, centred (the parts beyond it are not seen; a prediction maps
  back onto them by repeating its nearest edge pixel, and the metrics score that like any prediction);
- "stretch" resizes to h x w (aspect ratio lost); `content_size` is (h, w).

Class weights from class pixel counts n_c (ignore label excluded) over a split, with K the classes
present (n_c > 0) and N = sum_c n_c:
- "inverse_frequency": w_c = N / (K n_c);
- "median_frequency" (Eigen & Fergus 2015): f_c = n_c / P_c, with P_c the pixels (ignore excluded) of
  the images in which c appears, and w_c = median_{present c}(f) / f_c.
A class that never appears weighs 0 (it has no pixel to weigh).
"""

from __future__ import annotations

import tensorflow as tf

from components.core.label_maps import IGNORE_LABEL

RESIZE_MODES = ("fit", "fill", "stretch")
CLASS_WEIGHTINGS = ("inverse_frequency", "median_frequency")

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
FIXED_NORMALIZATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "minus_one_to_one": ((127.5,) * 3, (127.5,) * 3),
    "none": ((0.0,) * 3, (1.0,) * 3),
}
"""Normalisations with fixed (mean, std) per channel, in pixel units: image = (pixels - mean) / std."""
DATASET_NORMALIZATION = "dataset"
NORMALIZATIONS = (DATASET_NORMALIZATION, *FIXED_NORMALIZATIONS)


def to_scalar_strings(values) -> tf.Tensor:
    """Turns a batch of one-string-per-example features (dense [B, 1], [B] or sparse) into [B]."""
    if isinstance(values, tf.SparseTensor):
        values = tf.sparse.to_dense(values, default_value="")
    elif isinstance(values, tf.RaggedTensor):
        values = values.to_tensor(default_value="")
    return tf.reshape(values, [-1])


def content_size(height: tf.Tensor, width: tf.Tensor, size: tuple[int, int], mode: str) -> tf.Tensor:
    """The (rows, cols) of the model input an H x W image covers after resizing (module docstring): int32 [2]."""
    target = tf.constant(size, tf.float64)
    if mode == "stretch":
        return tf.constant(size, tf.int32)
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}: must be one of {RESIZE_MODES}")
    original = tf.cast(tf.stack([height, width]), tf.float64)
    ratios = target / original
    scaled = tf.cast(tf.round(original * (tf.reduce_min(ratios) if mode == "fit" else tf.reduce_max(ratios))),
                     tf.int32)
    if mode == "fit":
        return tf.clip_by_value(scaled, 1, tf.constant(size, tf.int32))
    return tf.maximum(scaled, tf.constant(size, tf.int32))


def crop_offsets(content: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Where the input's window starts in a scaled image of `content` (rows, cols): centred where the image
    is larger than the input ("fill"), 0 where it is smaller ("fit", padded at the bottom and right)."""
    return tf.maximum(content - tf.constant(size, content.dtype), 0) // 2


def place_in_input(scaled: tf.Tensor, size: tuple[int, int], padding_value=0) -> tf.Tensor:
    """The input [h, w, C] made of a scaled image [rows, cols, C]: its centred window where it is larger,
    the image padded with `padding_value` at the bottom and right where it is smaller."""
    content = tf.shape(scaled)[:2]
    offsets = crop_offsets(content, size)
    window = tf.minimum(content, tf.constant(size, tf.int32))
    cropped = tf.image.crop_to_bounding_box(scaled, offsets[0], offsets[1], window[0], window[1])
    padded = tf.image.pad_to_bounding_box(cropped - padding_value, 0, 0, size[0], size[1]) + padding_value
    return tf.ensure_shape(padded, [size[0], size[1], scaled.shape[-1]])


def input_indices_of_content(content: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """For each row and column of a scaled image of `content` (rows, cols), the input row and column that
    shows it, or the nearest one where the image was cropped away ("fill"): gather a prediction at the input
    size with these to get it at the scaled size (int32 [rows], [cols])."""
    content = tf.cast(content, tf.int32)
    offsets = crop_offsets(content, size)
    rows = tf.clip_by_value(tf.range(content[0]) - offsets[0], 0, size[0] - 1)
    cols = tf.clip_by_value(tf.range(content[1]) - offsets[1], 0, size[1] - 1)
    return rows, cols


def decode_and_resize_image(encoded: tf.Tensor, size: tuple[int, int], mode: str) -> tuple[tf.Tensor, tf.Tensor]:
    """Decodes one JPEG/PNG image to float32 RGB in [0, 255] and resizes it bilinearly to `size` (h, w) by
    `mode`; returns the image [h, w, 3] (zeros where padded) and the rows and columns it covers (int32 [2])."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    shape = tf.shape(image)
    content = content_size(shape[0], shape[1], size, mode)
    image = tf.image.resize(tf.cast(image, tf.float32), content, method="bilinear")
    return place_in_input(image, size), content


def decode_and_resize_mask(encoded: tf.Tensor, size: tuple[int, int], mode: str) -> tf.Tensor:
    """Decodes one class-index PNG and resizes it with nearest neighbour to `size` (h, w) by `mode`, as
    `decode_and_resize_image` does its image (same size, same content); int64 [h, w], padding = ignore label.

    Masks are resized on their own, not with their image, so that the image's path through the transform
    graph needs no mask. A serving request has none: tf.Transform then feeds an empty string, and the mask
    is all ignore label (TensorFlow still runs this path when the request asks for any of the analyzers'
    constants)."""

    def decoded():
        mask = tf.io.decode_png(encoded, channels=1)
        shape = tf.shape(mask)
        content = content_size(shape[0], shape[1], size, mode)
        mask = tf.cast(tf.image.resize(mask, content, method="nearest"), tf.int64)
        return place_in_input(mask, size, padding_value=tf.constant(IGNORE_LABEL, tf.int64))[..., 0]

    mask = tf.cond(tf.strings.length(encoded) > 0, decoded,
                   lambda: tf.fill([size[0], size[1]], tf.constant(IGNORE_LABEL, tf.int64)))
    return tf.ensure_shape(mask, [size[0], size[1]])


def decode_and_resize_images(encoded: tf.Tensor, size: tuple[int, int], mode: str) -> tuple[tf.Tensor, tf.Tensor]:
    """`decode_and_resize_image` over a [B] batch: images [B, h, w, 3] and contents [B, 2]."""
    return tf.map_fn(lambda value: decode_and_resize_image(value, size, mode), encoded,
                     fn_output_signature=(tf.TensorSpec([size[0], size[1], 3], tf.float32),
                                          tf.TensorSpec([2], tf.int32)))


def decode_and_resize_masks(encoded: tf.Tensor, size: tuple[int, int], mode: str) -> tf.Tensor:
    """`decode_and_resize_mask` over a [B] batch: masks [B, h, w]."""
    return tf.map_fn(lambda value: decode_and_resize_mask(value, size, mode), encoded,
                     fn_output_signature=tf.TensorSpec([size[0], size[1]], tf.int64))


def content_masks(contents: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """bool [B, h, w]: True on the pixels each image covers (contents: [B, 2] rows and columns it is scaled
    to; all of the input when they reach or exceed it)."""
    rows = tf.range(size[0])[None, :, None] < contents[:, 0, None, None]
    cols = tf.range(size[1])[None, None, :] < contents[:, 1, None, None]
    return tf.logical_and(rows, cols)


def model_input(images: tf.Tensor, contents: tf.Tensor, size: tuple[int, int], padding_pixel, mean, std) -> tf.Tensor:
    """The normalised model input: images [B, h, w, 3] (pixels 0-255) with their padding (outside
    `content_masks(contents, size)`) set to `padding_pixel`, then (x - mean) / std per channel."""
    covered = content_masks(contents, size)
    images = tf.where(covered[..., None], images, tf.cast(padding_pixel, tf.float32))
    return (images - tf.cast(mean, tf.float32)) / tf.cast(std, tf.float32)


def class_pixel_counts(masks: tf.Tensor, num_classes: int) -> tf.Tensor:
    """int64 [B, num_classes]: pixels of each class per mask (ids >= num_classes, the ignore label among
    them, are not counted)."""
    flat = tf.cast(tf.reshape(masks, [tf.shape(masks)[0], -1]), tf.int32)
    return tf.math.bincount(flat, minlength=num_classes, maxlength=num_classes, axis=-1, dtype=tf.int64)


def class_weights(counts: tf.Tensor, presence_pixels: tf.Tensor, weighting: str) -> tf.Tensor:
    """float32 [C] class weights from split-wide class pixel counts (module docstring's formulas).

    Args:
        counts: [C] pixels of each class over the split.
        presence_pixels: [C] pixels (ignore excluded) of the images in which each class appears.
        weighting: one of `CLASS_WEIGHTINGS`.
    """
    counts = tf.cast(counts, tf.float64)
    present = counts > 0
    safe_counts = tf.where(present, counts, 1.0)
    if weighting == "inverse_frequency":
        classes_present = tf.reduce_sum(tf.cast(present, tf.float64))
        weights = tf.reduce_sum(counts) / (tf.maximum(classes_present, 1.0) * safe_counts)
    elif weighting == "median_frequency":
        frequency = safe_counts / tf.maximum(tf.cast(presence_pixels, tf.float64), 1.0)
        weights = _median(frequency, present) / frequency
    else:
        raise ValueError(f"unknown class weighting {weighting!r}: must be one of {CLASS_WEIGHTINGS}")
    return tf.cast(tf.where(present, weights, 0.0), tf.float32)


def _median(values: tf.Tensor, selected: tf.Tensor) -> tf.Tensor:
    """numpy.median of the `selected` entries of a 1-D float64 tensor (the mean of the two middle values
    for an even count; 0 when none is selected). Shapes may be unknown (as analyzer outputs' are)."""
    ordered = tf.sort(tf.where(selected, values, tf.constant(float("inf"), tf.float64)))
    count = tf.reduce_sum(tf.cast(selected, tf.int32))
    low = tf.gather(ordered, tf.maximum((count - 1) // 2, 0))
    high = tf.gather(ordered, count // 2)
    return tf.where(count > 0, (low + high) / 2.0, tf.zeros([], tf.float64))


SIZE_BUCKET_EDGES = (256, 512, 1024)


def size_bucket(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Buckets images by their longer side: "le256", "le512", "le1024" or "gt1024" (a [B] string tensor)."""
    longer = tf.maximum(tf.reshape(tf.cast(height, tf.int64), [-1]), tf.reshape(tf.cast(width, tf.int64), [-1]))
    names = tf.constant([f"le{edge}" for edge in SIZE_BUCKET_EDGES] + [f"gt{SIZE_BUCKET_EDGES[-1]}"])
    index = tf.searchsorted(tf.constant(SIZE_BUCKET_EDGES, tf.int64), longer, side="left")
    return tf.gather(names, index)
