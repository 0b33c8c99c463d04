"""Training augmentation of (image, mask) pairs: the DeepLab recipe and a few common additions, in TensorFlow ops.

Everything works in pixel space, on one example (`augment_example`) or on a batch of them, each with its
own seed (`augment_batch`, which the Trainer's `tf.data` pipeline runs): `image` float32 [H, W, 3] RGB in
[0, 255], `mask` [H, W] of class ids (int64, or uint8) with :data:`~components.core.label_maps.IGNORE_LABEL`
(255) for ignored pixels, and a `fill` pixel ([3], the dataset's mean pixel) for the image where no pixel
exists. The random draws are per example; the resampling of a batch is one op for its images and one for
its masks, each example with its own map. CutMix works on a batch. What runs, and with which ranges, is
an :class:`~components.core.config.AugmentationConfig`:

- photometric steps, image only (the mask is returned untouched): colour jitter (brightness, contrast,
  saturation, hue on pixels / 255, clipped after each step) and Gaussian blur (separable depthwise
  convolution, mirrored borders);
- geometric steps, image and mask alike, composed into one affine map from output to input pixels and
  resampled once: a random scale of the whole image followed by a random window of the output size
  (padding where the scaled image is smaller), a horizontal flip, a rotation about the centre. The image
  is resampled bilinearly, the mask with nearest neighbour (so a mask holds only ids it held, or 255);
  pixels from outside the input are the fill pixel in the image and 255 in the mask. Photometric steps
  come first, so padding stays exactly the fill pixel. Without rotation the map is axis-aligned and
  `tf.image.crop_and_resize` resamples it (1.2 ms of CPU for a 256x256 image here, against 3.3 ms for
  `tf.raw_ops.ImageProjectiveTransformV3`, which resamples rotations; the masks are the same but where
  a sample falls exactly half-way between two pixels (scales such as 1.5 or 0.5 make many such ties),
  which float rounding gives to either neighbour; the images agree to 1e-3 but in the one-pixel seam at
  the input's edge, which the projective op blends with the fill pixel and `crop_and_resize` does not).
- CutMix (`cutmix`): with a probability, a random box of a partner example of the batch (a random
  pairing) replaces the same box of an example, in image and mask alike.

Randomness is stateless: every example gets an int64 [2] seed, split into one independent seed per step
(`tf.random.experimental.stateless_split`), so a seed always gives the same result whatever the order or
parallelism of the calls, and switching one step on or off does not change the draws of the others.

Pixel-centre convention: pixel (x, y) has its centre at integer coordinates (x, y) in both the image
and mask resampling, so bilinear and nearest sampling of the same map agree: where a pixel's 3x3
neighbourhood in the output mask is one class, its bilinear image value comes from that class alone
(for scales up to 2).
"""

from __future__ import annotations

import math

import tensorflow as tf

from components.core.config import AugmentationConfig, BlurAugmentationConfig, ColorJitterConfig
from components.core.label_maps import IGNORE_LABEL

# Index of each step's seed in the split of an example's seed (fixed, so one step's draws never depend on
# which other steps are on).
_SCALE, _FLIP, _ROTATION, _COLOR, _BLUR = range(5)
_NUM_STEPS = 5


def step_seeds(seed) -> tf.Tensor:
    """Splits an example's int64 [2] seed into one independent [2] seed per step: an int64 [5, 2] tensor."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=_NUM_STEPS)


def augment_example(image, mask, fill, seed, config: AugmentationConfig,
                    output_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Applies the configured augmentations (all but CutMix) to one example: `augment_batch` of a batch of one.

    Args:
        image: float32 [H, W, 3], RGB pixels in [0, 255].
        mask: int [H, W] class ids, 255 = ignore.
        fill: float32 [3], the pixel that padding and rotated-in corners of the image get (the mean pixel).
        seed: int64 [2] stateless seed of this example.
        config: which augmentations run, with their ranges.
        output_size: (height, width) of the result; with scale off, the input is cropped or padded to it
            at scale 1.

    Returns:
        (image float32 [output_size..., 3] in [0, 255] (the fill pixel aside), mask int64 [output_size...]).
    """
    images, masks = augment_batch(tf.convert_to_tensor(image, tf.float32)[None],
                                  tf.convert_to_tensor(mask, tf.int64)[None],
                                  tf.convert_to_tensor(fill, tf.float32)[None],
                                  tf.convert_to_tensor(seed, tf.int64)[None], config, output_size)
    return images[0], masks[0]


def augment_batch(images, masks, fills, seeds, config: AugmentationConfig,
                  output_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Applies the configured augmentations (all but CutMix) to a batch, each example with its own seed.

    The random draws are per example (each seed split by `step_seeds`); the pixel work is batched: one
    resampling op for all the images and one for all the masks, each example with its own map (the
    photometric steps, when on, go example by example). An example's result is the same whichever batch
    it is in.

    Args:
        images: float32 [B, H, W, 3], RGB pixels in [0, 255].
        masks: integer [B, H, W] class ids, 255 = ignore (int64, or uint8 to move an eighth of the bytes).
        fills: float32 [B, 3], each example's fill pixel (padding and rotated-in corners).
        seeds: int64 [B, 2], each example's stateless seed.
        config: which augmentations run, with their ranges.
        output_size: (height, width) of the results.

    Returns:
        (images float32 [B, output_size..., 3], masks [B, output_size...] of the masks' dtype).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    masks = tf.convert_to_tensor(masks)
    fills = tf.convert_to_tensor(fills, tf.float32)
    seeds = tf.map_fn(step_seeds, tf.cast(seeds, tf.int64),
                      fn_output_signature=tf.TensorSpec([_NUM_STEPS, 2], tf.int64))
    if config.color_jitter.enabled or config.blur.enabled:
        images = tf.map_fn(lambda example: _photometric(example[0], example[1], config), (images, seeds),
                           fn_output_signature=tf.TensorSpec(images.shape[1:], tf.float32))
    if config.geometric or tuple(images.shape[1:3]) != tuple(output_size):
        input_size = tf.shape(images)[1:3]
        transforms = tf.map_fn(
            lambda example_seeds: geometric_transform(input_size, output_size, example_seeds, config),
            seeds, fn_output_signature=tf.TensorSpec([3, 3], tf.float32))
        resample = warp_batch if config.rotation.enabled else warp_axis_aligned_batch
        images, masks = resample(images, masks, fills, transforms, output_size)
    return images, masks


def _photometric(image, seeds, config: AugmentationConfig) -> tf.Tensor:
    """The photometric steps (colour jitter, blur) of one [H, W, 3] image with its step seeds."""
    if config.color_jitter.enabled:
        image = color_jitter(image, seeds[_COLOR], config.color_jitter)
    if config.blur.enabled:
        image = random_gaussian_blur(image, seeds[_BLUR], config.blur)
    return image


def geometric_transform(input_size, output_size: tuple[int, int], seeds, config: AugmentationConfig) -> tf.Tensor:
    """The random affine map from output pixel coordinates to input pixel coordinates, a float32 [3, 3] matrix.

    Composed of, from the output back to the input: the rotation about the output's centre, the
    horizontal flip, then the scaled window: output pixel (x, y) sits at (x + left, y + top) in the image
    scaled by `s`, whose pixel i lies at (i + 0.5) * s - 0.5 (centres kept aligned, as
    `tf.image.resize`). `top`, `left` are whole pixels drawn uniformly so that the window lies inside
    the scaled image, or the scaled image inside the window where it is smaller.

    Args:
        input_size: (height, width) of the input, an int tensor [2].
        output_size: (height, width) of the output.
        seeds: the example's step seeds (`step_seeds`).
        config: which geometric steps are on.
    """
    out_h, out_w = (float(side) for side in output_size)
    in_h, in_w = tf.unstack(tf.cast(input_size, tf.float32))
    if config.scale.enabled:
        scale = tf.random.stateless_uniform([], seeds[_SCALE], config.scale.min_scale, config.scale.max_scale)
    else:
        scale = tf.constant(1.0)
    offset_seeds = tf.random.experimental.stateless_split(seeds[_SCALE], num=2)
    top = _window_offset(in_h * scale, out_h, offset_seeds[0])
    left = _window_offset(in_w * scale, out_w, offset_seeds[1])
    matrix = _affine(1.0 / scale, 0.0, (left + 0.5) / scale - 0.5,
                     0.0, 1.0 / scale, (top + 0.5) / scale - 0.5)
    if config.horizontal_flip:
        flip = tf.random.stateless_uniform([], seeds[_FLIP]) < 0.5
        mirror = _affine(-1.0, 0.0, out_w - 1.0, 0.0, 1.0, 0.0)
        matrix = tf.where(flip, matrix @ mirror, matrix)
    if config.rotation.enabled:
        limit = math.radians(config.rotation.max_degrees)
        angle = tf.random.stateless_uniform([], seeds[_ROTATION], -limit, limit)
        matrix = matrix @ rotation_about_centre(angle, output_size)
    return matrix


def rotation_about_centre(angle, size: tuple[int, int]) -> tf.Tensor:
    """The [3, 3] map from output to input coordinates of a rotation by `angle` radians about the centre
    of a `size` (height, width) image (positive: the content turns clockwise on screen, y pointing down)."""
    centre_x, centre_y = (size[1] - 1) / 2.0, (size[0] - 1) / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    return _affine(cos, sin, centre_x - cos * centre_x - sin * centre_y,
                   -sin, cos, centre_y + sin * centre_x - cos * centre_y)


def warp(image, mask, fill, transform, output_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """`warp_batch` of one example: image [H, W, C], mask [H, W], fill [C], transform [3, 3]."""
    images, masks = warp_batch(tf.convert_to_tensor(image, tf.float32)[None], tf.convert_to_tensor(mask)[None],
                               tf.convert_to_tensor(fill, tf.float32)[None],
                               tf.convert_to_tensor(transform, tf.float32)[None], output_size)
    return images[0], masks[0]


def warp_batch(images, masks, fills, transforms, output_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Resamples images (bilinear) and masks (nearest) through `transforms`, output to input pixel coordinates.

    One map per example (`transforms` [B, 3, 3]). Input pixels outside the input are the example's `fills`
    pixel ([B, C]) in the image (per channel: the image is shifted by it so that the op's scalar fill value
    0 stands for it) and the ignore label in the mask.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    masks = tf.convert_to_tensor(masks)
    fills = tf.convert_to_tensor(fills, tf.float32)[:, None, None, :]
    flat = tf.reshape(tf.convert_to_tensor(transforms, tf.float32), [-1, 9])[:, :8]
    shape = tf.constant(output_size, tf.int32)
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=images - fills, transforms=flat, output_shape=shape, fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT") + fills
    moved_masks = tf.raw_ops.ImageProjectiveTransformV3(
        images=masks[..., None], transforms=flat, output_shape=shape,
        fill_value=float(IGNORE_LABEL), interpolation="NEAREST", fill_mode="CONSTANT")[..., 0]
    return (tf.ensure_shape(moved, [images.shape[0], *output_size, images.shape[-1]]),
            tf.ensure_shape(moved_masks, [masks.shape[0], *output_size]))


def warp_axis_aligned(image, mask, fill, transform, output_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """`warp_axis_aligned_batch` of one example: image [H, W, C], mask [H, W], fill [C], transform [3, 3]."""
    images, masks = warp_axis_aligned_batch(
        tf.convert_to_tensor(image, tf.float32)[None], tf.convert_to_tensor(mask)[None],
        tf.convert_to_tensor(fill, tf.float32)[None], tf.convert_to_tensor(transform, tf.float32)[None], output_size)
    return images[0], masks[0]


def warp_axis_aligned_batch(images, masks, fills, transforms,
                            output_size: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """`warp_batch` for `transforms` without rotation (scale, translation, flips), by one
    `tf.image.crop_and_resize` for the images and one for the masks, a box per example.

    Only each map's diagonal and translation are read: the caller sends rotations to `warp_batch`. Output
    row i (of h) samples input row y_i = a i + b (the map's row; columns alike, a negative a flips).
    crop_and_resize samples row y1 (H' - 1) + i (y2 - y1) (H' - 1) / (h - 1) of an input of H' rows and a
    box [y1, y2]. The inputs get one replicated edge pixel all round first (H' = H + 2, rows shifted by
    1), so that a sample within half a pixel of the edge takes the edge pixel, and the box is
    [(y_0 + 1) / (H + 1), (y_(h-1) + 1) / (H + 1)]. Samples outside the input's pixels (y <= -0.5 or
    y >= H - 0.5, where nearest rounding leaves the input) are the example's fill pixel in the image and
    the ignore label in the mask: the mask is `warp_batch`'s but at exact half-pixel ties (either
    neighbour), and the image is `warp_batch`'s bilinear value wherever the sample and its neighbours lie
    inside the input.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    masks = tf.convert_to_tensor(masks)
    matrices = tf.convert_to_tensor(transforms, tf.float32)
    fills = tf.convert_to_tensor(fills, tf.float32)
    height, width = (tf.cast(side, tf.float32) for side in tf.unstack(tf.shape(images)[1:3]))
    out_h, out_w = output_size
    rows = matrices[:, 1, 1, None] * tf.range(out_h, dtype=tf.float32) + matrices[:, 1, 2, None]  # [B, h]
    columns = matrices[:, 0, 0, None] * tf.range(out_w, dtype=tf.float32) + matrices[:, 0, 2, None]  # [B, w]
    inside = (((rows > -0.5) & (rows < height - 0.5))[:, :, None]
              & ((columns > -0.5) & (columns < width - 0.5))[:, None, :])
    boxes = tf.stack([(rows[:, 0] + 1.0) / (height + 1.0), (columns[:, 0] + 1.0) / (width + 1.0),
                      (rows[:, -1] + 1.0) / (height + 1.0), (columns[:, -1] + 1.0) / (width + 1.0)], axis=1)
    examples = tf.range(tf.shape(images)[0])
    edge = [[0, 0], [1, 1], [1, 1]]
    moved = tf.image.crop_and_resize(tf.pad(images, edge + [[0, 0]], mode="SYMMETRIC"), boxes, examples,
                                     output_size, method="bilinear")
    moved_masks = tf.image.crop_and_resize(tf.pad(masks, edge, mode="SYMMETRIC")[..., None], boxes, examples,
                                           output_size, method="nearest")[..., 0]
    moved = tf.where(inside[..., None], moved, fills[:, None, None, :])
    moved_masks = tf.where(inside, tf.cast(moved_masks, masks.dtype), tf.constant(IGNORE_LABEL, masks.dtype))
    return (tf.ensure_shape(moved, [images.shape[0], *output_size, images.shape[-1]]),
            tf.ensure_shape(moved_masks, [masks.shape[0], *output_size]))


def color_jitter(image, seed, config: ColorJitterConfig) -> tf.Tensor:
    """Random brightness, contrast, saturation and hue (in that order) of a [H, W, 3] pixel image in [0, 255]."""
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    image = image / 255.0
    if config.brightness > 0:
        image = tf.clip_by_value(tf.image.stateless_random_brightness(image, config.brightness, seeds[0]), 0.0, 1.0)
    if config.contrast > 0:
        image = tf.clip_by_value(tf.image.stateless_random_contrast(
            image, 1.0 - config.contrast, 1.0 + config.contrast, seeds[1]), 0.0, 1.0)
    if config.saturation > 0:
        image = tf.clip_by_value(tf.image.stateless_random_saturation(
            image, 1.0 - config.saturation, 1.0 + config.saturation, seeds[2]), 0.0, 1.0)
    if config.hue > 0:
        image = tf.clip_by_value(tf.image.stateless_random_hue(image, config.hue, seeds[3]), 0.0, 1.0)
    return image * 255.0


def random_gaussian_blur(image, seed, config: BlurAugmentationConfig) -> tf.Tensor:
    """Blurs a [H, W, C] image with probability `config.probability`, sigma uniform in [min_sigma, max_sigma]."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    sigma = tf.random.stateless_uniform([], seeds[0], config.min_sigma, config.max_sigma)
    apply = tf.random.stateless_uniform([], seeds[1]) < config.probability
    radius = math.ceil(3 * config.max_sigma)
    return tf.cond(apply, lambda: tf.clip_by_value(gaussian_blur(image, sigma, radius), 0.0, 255.0), lambda: image)


def gaussian_blur(image, sigma, radius: int) -> tf.Tensor:
    """Separable Gaussian blur of a [H, W, C] image (kernel of 2 * radius + 1 taps, mirrored borders).

    Both passes are vertical depthwise convolutions, the second on the transposed image: in TF 2.16 on
    CPU (oneDNN on), `tf.nn.depthwise_conv2d` with a horizontal [1, k, C, 1] filter of 15 taps or more
    crashed the process or grew its memory without bound, while vertical [k, 1, C, 1] filters ran.
    """
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(taps / sigma))
    kernel = kernel / tf.reduce_sum(kernel)
    kernel = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, image.shape[-1], 1])
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    blurred = tf.nn.depthwise_conv2d(padded, kernel, strides=[1, 1, 1, 1], padding="VALID")
    blurred = tf.transpose(blurred, [0, 2, 1, 3])
    blurred = tf.nn.depthwise_conv2d(blurred, kernel, strides=[1, 1, 1, 1], padding="VALID")
    return tf.transpose(blurred, [0, 2, 1, 3])[0]


def cutmix(images, masks, seed, probability: float) -> tuple[tf.Tensor, tf.Tensor]:
    """CutMix within a batch: each example, with probability `probability`, gets a box of its partner.

    Partners are a random permutation of the batch (an example may draw itself, which changes nothing).
    The box covers a fraction r ~ U[0, 1] of the image (sides sqrt(r) of the image's, CutMix with
    alpha = 1), centred uniformly and clipped to the image; image and mask take the same box.

    Args:
        images: float [B, H, W, C].
        masks: int [B, H, W].
        seed: int64 [2] stateless seed of the batch.
        probability: chance that an example gets a box.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    batch = tf.shape(images)[0]
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    partner = tf.argsort(tf.random.stateless_uniform([batch], seeds[0]))
    apply = tf.random.stateless_uniform([batch], seeds[1]) < probability
    side = tf.sqrt(tf.random.stateless_uniform([batch], seeds[2]))
    centre = tf.random.stateless_uniform([batch, 2], seeds[3])
    size = tf.cast(tf.stack([height, width]), tf.float32)
    half = side[:, None] * size / 2.0
    start = tf.cast(tf.round(tf.clip_by_value(centre * size - half, 0.0, size)), tf.int32)
    end = tf.cast(tf.round(tf.clip_by_value(centre * size + half, 0.0, size)), tf.int32)
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    inside = ((rows >= start[:, 0, None, None]) & (rows < end[:, 0, None, None]) &
              (cols >= start[:, 1, None, None]) & (cols < end[:, 1, None, None]) & apply[:, None, None])
    images = tf.where(inside[..., None], tf.gather(images, partner), images)
    masks = tf.where(inside, tf.gather(masks, partner), masks)
    return images, masks


def _window_offset(scaled: tf.Tensor, out: float, seed) -> tf.Tensor:
    """Whole-pixel position of the output window in the scaled image, uniform: in [0, scaled - out] when
    the scaled image is larger (a crop), in [scaled - out, 0] when smaller (padding on both sides)."""
    low = tf.minimum(0.0, tf.math.ceil(scaled - out))
    high = tf.maximum(0.0, tf.floor(scaled - out))
    return tf.floor(tf.random.stateless_uniform([], seed, low, high + 1.0))


def _affine(a0, a1, a2, b0, b1, b2) -> tf.Tensor:
    """[[a0, a1, a2], [b0, b1, b2], [0, 0, 1]] as float32."""
    values = [tf.cast(value, tf.float32) for value in (a0, a1, a2, b0, b1, b2)]
    return tf.stack([tf.stack(values[:3]), tf.stack(values[3:]), tf.constant([0.0, 0.0, 1.0])])
