"""Training augmentation keeps image and mask aligned, masks nearest (only their ids or 255), padding the fill
pixel, photometric steps off the mask, and repeats exactly with a seed; its configuration names bad keys.

The test example's colours encode its own class ids: a 32x32 image tiled by rectangles (some 1 or 2 pixels
thin), each a class of its own, whose pixels are `code(class)`. Bilinear resampling blends colours only
where a pixel's sample area touches two rectangles; where a pixel's 3x3 neighbourhood in the output mask
is one class, nearest and bilinear sampling agree exactly (for scales up to 2, see the module docstring
of `components.core.augmentation`), so there the image must be exactly that class's code, or the fill
pixel where the mask is 255.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from components.core.augmentation import (augment_batch, augment_example, cutmix, geometric_transform,
                                         rotation_about_centre, step_seeds, warp, warp_axis_aligned)
from components.core.config import AugmentationConfig, ConfigError, PipelineConfig
from components.core.label_maps import IGNORE_LABEL

SIZE = (32, 32)
ROW_BANDS = (5, 2, 9, 1, 6, 9)
COLUMN_BANDS = (7, 1, 10, 2, 8, 4)
FILL = np.array([101.5, 117.25, 104.0], np.float32)  # no class's code
SEEDS = range(8)
ALL_OFF = {"horizontal_flip": False, "scale": {"enabled": False}}


def code(ids) -> np.ndarray:
    """The colour of class `ids` (distinct for ids 0..35; the blue channel is not linear in the id, so that a
    blend of two codes is never a third one)."""
    ids = np.asarray(ids, np.float64)
    return np.stack([ids * 7.0, 250.0 - ids * 7.0, (ids * ids * 29.0 + 11.0) % 256.0], axis=-1).astype(np.float32)


def tiled_example() -> tuple[np.ndarray, np.ndarray]:
    """(image, mask): rectangles of distinct classes 0..35 tiling a 32x32 image, the image coded by class."""
    mask = np.zeros(SIZE, np.int64)
    row_edges, column_edges = np.cumsum((0,) + ROW_BANDS), np.cumsum((0,) + COLUMN_BANDS)
    for row in range(len(ROW_BANDS)):
        for column in range(len(COLUMN_BANDS)):
            mask[row_edges[row]:row_edges[row + 1], column_edges[column]:column_edges[column + 1]] = \
                row * len(COLUMN_BANDS) + column
    return code(mask), mask


def config(**sections) -> AugmentationConfig:
    return AugmentationConfig.from_dict({**ALL_OFF, **sections})


def run(augmentation: AugmentationConfig, seed: int, image=None, mask=None, size=SIZE):
    if image is None:
        image, mask = tiled_example()
    out_image, out_mask = augment_example(image, mask, FILL, tf.constant([seed, 11], tf.int64), augmentation, size)
    return out_image.numpy(), out_mask.numpy()


def assert_aligned(image: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    """Checks that image and mask agree; returns (class pixels, padded pixels) of the first check.

    Where a pixel's 3x3 neighbourhood in the mask is uniform (interior pixels), the image is that class's
    code (or the fill pixel for 255). Conversely, wherever the image is exactly a class's code (its sample
    area lay in that class alone) the mask is that class, and wherever it is the fill pixel the mask is
    255: this catches a one-pixel shift, which the first check alone cannot.
    """
    assert set(np.unique(mask)) <= set(range(36)) | {IGNORE_LABEL}
    codes = np.concatenate([code(np.arange(36)), FILL[None]])
    distance = np.abs(image[:, :, None, :] - codes[None, None]).max(axis=-1)
    pure = distance.min(axis=-1) < 1e-3
    expected = np.append(np.arange(36), IGNORE_LABEL)[distance.argmin(axis=-1)]
    np.testing.assert_array_equal(mask[pure], expected[pure])
    height, width = mask.shape
    windows = np.lib.stride_tricks.sliding_window_view(mask, (3, 3))
    uniform = np.zeros(mask.shape, bool)
    uniform[1:-1, 1:-1] = (windows == windows[:, :, 1:2, 1:2]).all(axis=(2, 3))
    labelled = uniform & (mask != IGNORE_LABEL)
    padded = uniform & (mask == IGNORE_LABEL)
    np.testing.assert_allclose(image[labelled], code(mask[labelled]), atol=1e-3)
    np.testing.assert_allclose(image[padded], np.broadcast_to(FILL, image[padded].shape), atol=1e-3)
    assert labelled.sum() > 0.05 * height * width  # the check covers a real part of the image
    return int(labelled.sum()), int(padded.sum())


def test_the_tiled_example_codes_each_pixel_by_its_class():
    image, mask = tiled_example()
    assert len(np.unique(mask)) == 36
    assert_aligned(image, mask)
    shifted = np.roll(image, 1, axis=1)  # the check catches a one-pixel shift
    with pytest.raises(AssertionError):
        assert_aligned(shifted, mask)


def test_everything_off_returns_the_example_unchanged():
    image, mask = tiled_example()
    out_image, out_mask = run(config(), seed=0)
    np.testing.assert_array_equal(out_mask, mask)
    np.testing.assert_allclose(out_image, image, atol=1e-4)


def test_scale_and_crop_keep_image_and_mask_aligned_and_pad_with_the_fill_pixel():
    scales = {"enabled": True, "min_scale": 0.5, "max_scale": 2.0}
    padded_any = cropped_any = False
    for seed in SEEDS:
        image, mask = run(config(scale=scales), seed)
        _, padded = assert_aligned(image, mask)
        padded_any |= padded > 0
        cropped_any |= not np.any(mask == IGNORE_LABEL)
    assert padded_any and cropped_any  # both a scale below 1 (padding) and above 1 (crop) were drawn


def test_half_scale_places_the_whole_image_at_half_size_inside_the_padding():
    source_image, source_mask = tiled_example()
    placements = set()
    for seed in SEEDS:
        image, mask = run(config(scale={"enabled": True, "min_scale": 0.5, "max_scale": 0.5}), seed)
        rows, columns = np.nonzero(mask != IGNORE_LABEL)
        top, left = rows.min(), columns.min()
        placements.add((top, left))
        block = (slice(top, top + 16), slice(left, left + 16))
        assert (mask != IGNORE_LABEL).sum() == 16 * 16
        # Output pixel y samples input 2y + 0.5: nearest takes pixel 2y + 1, bilinear the mean of 2y and 2y + 1.
        np.testing.assert_array_equal(mask[block], source_mask[1::2, 1::2])
        means = source_image.reshape(16, 2, 16, 2, 3).mean(axis=(1, 3))
        np.testing.assert_allclose(image[block], means, atol=1e-3)
        outside = np.ones(SIZE, bool)
        outside[block] = False
        np.testing.assert_allclose(image[outside], np.broadcast_to(FILL, image[outside].shape), atol=1e-3)
    assert len(placements) > 1  # the padding moves


def test_double_scale_crops_a_window_of_the_nearest_upsampled_mask():
    _, source_mask = tiled_example()
    upsampled = np.repeat(np.repeat(source_mask, 2, axis=0), 2, axis=1)
    windows = set()
    for seed in SEEDS:
        image, mask = run(config(scale={"enabled": True, "min_scale": 2.0, "max_scale": 2.0}), seed)
        assert_aligned(image, mask)
        matches = [(top, left) for top in range(33) for left in range(33)
                   if np.array_equal(upsampled[top:top + 32, left:left + 32], mask)]
        assert matches
        windows.add(matches[0])
    assert len(windows) > 1


def test_horizontal_flip_flips_image_and_mask_together_or_neither():
    source_image, source_mask = tiled_example()
    flipped = 0
    for seed in SEEDS:
        image, mask = run(config(horizontal_flip=True), seed)
        if np.array_equal(mask, source_mask):
            np.testing.assert_allclose(image, source_image, atol=2e-3)
        else:
            np.testing.assert_array_equal(mask, source_mask[:, ::-1])
            # crop_and_resize's float32 box arithmetic puts a sample a few 1e-6 of a pixel off: up to ~2e-3
            # at an edge between codes ~250 apart (1.6e-3 measured)
            np.testing.assert_allclose(image, source_image[:, ::-1], atol=2e-3)
            flipped += 1
    assert 0 < flipped < len(SEEDS)


def test_rotation_keeps_image_and_mask_aligned_and_fills_the_corners():
    source_image, source_mask = tiled_example()
    padded_total = 0
    for seed in SEEDS:
        image, mask = run(config(rotation={"enabled": True, "max_degrees": 30.0}), seed)
        _, padded = assert_aligned(image, mask)
        padded_total += padded
        assert not np.array_equal(mask, source_mask)
    assert padded_total > 0
    image, mask = run(config(rotation={"enabled": True, "max_degrees": 0.0}), 0)
    np.testing.assert_array_equal(mask, source_mask)


@pytest.mark.parametrize("turns", [1, -1])
def test_a_quarter_turn_about_the_centre_moves_whole_pixels(turns):
    """At +-90 degrees every sample falls on a pixel centre: bilinear and nearest give the rotated arrays
    (a positive angle turns the content clockwise on screen: np.rot90 with a negative count)."""
    source_image, source_mask = tiled_example()
    transform = rotation_about_centre(tf.constant(turns * np.pi / 2), SIZE)
    image, mask = (value.numpy() for value in warp(source_image, source_mask, FILL, transform, SIZE))
    np.testing.assert_array_equal(mask, np.rot90(source_mask, -turns))
    np.testing.assert_allclose(image, np.rot90(source_image, -turns), atol=1e-3)


@pytest.mark.parametrize("size", [SIZE, (24, 40)])
def test_the_axis_aligned_resampling_is_the_projective_one_but_for_the_seam_at_the_input_edge(size):
    """Random scales, windows and flips through both resamplings: the same masks (random maps do not
    sample exactly half-way between pixels; ties: the next test); the same images (to 1e-3) wherever the
    projective op's sample and its bilinear neighbours lie inside the input or wholly outside; only its
    one-pixel seam, which blends edge pixels with the fill pixel, differs."""
    source_image, source_mask = tiled_example()
    sections = config(horizontal_flip=True, scale={"enabled": True, "min_scale": 0.5, "max_scale": 2.0})
    for seed in SEEDS:
        transform = geometric_transform(tf.constant(SIZE), size, step_seeds(tf.constant([seed, 1])), sections)
        expected_image, expected_mask = (value.numpy() for value in warp(source_image, source_mask, FILL, transform, size))
        image, mask = (value.numpy() for value in warp_axis_aligned(source_image, source_mask, FILL, transform, size))
        rows, columns = np.meshgrid(np.arange(size[0]), np.arange(size[1]), indexing="ij")
        points = transform.numpy() @ np.stack([columns.ravel(), rows.ravel(), np.ones(columns.size)])
        x, y = (points[0].reshape(size), points[1].reshape(size))
        clear = ((x >= 0) & (x <= SIZE[1] - 1) & (y >= 0) & (y <= SIZE[0] - 1)) | \
                (x < -1) | (x > SIZE[1]) | (y < -1) | (y > SIZE[0])
        assert clear.mean() > 0.8
        np.testing.assert_allclose(image[clear], expected_image[clear], atol=1e-3)
        np.testing.assert_array_equal(mask, expected_mask)
        assert mask.dtype == source_mask.dtype and image.shape == (*size, 3)


def test_at_half_pixel_ties_the_masks_may_take_either_neighbour_and_agree_everywhere_else():
    """Zoomed out by 2/3 (input pixel 1.5 i for output pixel i), every odd output row and column samples
    exactly half-way between two input pixels, where the two ops' float arithmetic rounds either way: there
    each mask holds one of the two neighbours' ids (or 255 past the input's edge), elsewhere they agree."""
    source_image, source_mask = tiled_example()
    transform = tf.constant([[1.5, 0.0, 0.0], [0.0, 1.5, 0.0], [0.0, 0.0, 1.0]], tf.float32)
    _, expected_mask = (value.numpy() for value in warp(source_image, source_mask, FILL, transform, SIZE))
    _, mask = (value.numpy() for value in warp_axis_aligned(source_image, source_mask, FILL, transform, SIZE))
    padded = np.pad(source_mask, ((0, SIZE[0]), (0, SIZE[1])), constant_values=IGNORE_LABEL)
    tie = (np.arange(SIZE[0]) % 2 == 1)
    ties = tie[:, None] | tie[None, :]
    np.testing.assert_array_equal(mask[~ties], expected_mask[~ties])
    for row, column in zip(*np.nonzero(ties)):
        y, x = 1.5 * row, 1.5 * column
        neighbours = {padded[int(np.floor(y)) + dy, int(np.floor(x)) + dx]
                      for dy in ((0, 1) if tie[row] else (0,)) for dx in ((0, 1) if tie[column] else (0,))}
        assert {mask[row, column], expected_mask[row, column]} <= neighbours
    assert np.all(mask[:21, :21] != IGNORE_LABEL) and np.all(mask[22:, :] == IGNORE_LABEL)


def test_a_window_inside_the_doubled_image_has_no_padding_at_its_edge():
    """At scale 2 the window at the top-left corner lies inside the scaled image: its first row and column
    sample a quarter pixel before the input's first, which is still the input's edge pixel, not padding."""
    source_image, source_mask = tiled_example()
    transform = tf.constant([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25], [0.0, 0.0, 1.0]], tf.float32)
    image, mask = (value.numpy() for value in warp_axis_aligned(source_image, source_mask, FILL, transform, SIZE))
    np.testing.assert_array_equal(mask, np.repeat(np.repeat(source_mask[:16, :16], 2, axis=0), 2, axis=1))
    np.testing.assert_allclose(image[0, 0], source_image[0, 0], atol=1e-3)


def test_all_geometric_steps_together_keep_alignment_at_another_output_size():
    sections = dict(horizontal_flip=True, scale={"enabled": True}, rotation={"enabled": True, "max_degrees": 45.0})
    for seed in SEEDS:
        assert_aligned(*run(config(**sections), seed))
    image, mask = run(config(**sections), 0, size=(24, 40))
    assert image.shape == (24, 40, 3) and mask.shape == (24, 40)
    assert_aligned(image, mask)


def test_masks_only_ever_hold_their_own_ids_or_the_ignore_label():
    """A mask of a few far-apart ids (255 among them): any interpolation would create values in between."""
    rng = np.random.default_rng(0)
    mask = rng.choice(np.array([3, 77, 200, IGNORE_LABEL]), size=SIZE).astype(np.int64)
    image = rng.uniform(0, 255, size=(*SIZE, 3)).astype(np.float32)
    everything = AugmentationConfig.from_dict({
        "scale": {"enabled": True}, "rotation": {"enabled": True}, "color_jitter": {"enabled": True},
        "blur": {"enabled": True, "probability": 1.0}})
    for seed in SEEDS:
        out_image, out_mask = run(everything, seed, image, mask)
        assert set(np.unique(out_mask)) <= {3, 77, 200, IGNORE_LABEL}
        assert 0.0 <= out_image.min() and out_image.max() <= 255.0


@pytest.mark.parametrize("sections", [
    {"color_jitter": {"enabled": True}},
    {"color_jitter": {"enabled": True, "brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.5}},
    {"blur": {"enabled": True, "probability": 1.0, "min_sigma": 1.0}},
], ids=["color_jitter", "hue_only", "blur"])
def test_photometric_steps_change_the_image_only(sections):
    source_image, source_mask = tiled_example()
    for seed in SEEDS:
        image, mask = run(config(**sections), seed)
        np.testing.assert_array_equal(mask, source_mask)
        assert not np.allclose(image, source_image, atol=0.5)
        assert image.min() >= 0.0 and image.max() <= 255.0


def test_blur_keeps_a_flat_image_flat_and_respects_its_probability():
    flat = np.full((*SIZE, 3), 90.0, np.float32)
    mask = np.zeros(SIZE, np.int64)
    image, _ = run(config(blur={"enabled": True, "probability": 1.0, "min_sigma": 1.0, "max_sigma": 3.0}), 0,
                   flat, mask)
    np.testing.assert_allclose(image, flat, atol=1e-3)  # normalised kernel, mirrored borders
    source_image, _ = tiled_example()
    never = [run(config(blur={"enabled": True, "probability": 0.0}), seed)[0] for seed in SEEDS]
    assert all(np.array_equal(image, source_image) for image in never)
    half = [np.array_equal(run(config(blur={"enabled": True, "probability": 0.5}), seed)[0], source_image)
            for seed in range(16)]
    assert 0 < sum(half) < len(half)


def test_brightness_shifts_every_pixel_by_one_delta_within_its_range():
    flat = np.full((*SIZE, 3), 128.0, np.float32)
    mask = np.zeros(SIZE, np.int64)
    deltas = set()
    for seed in SEEDS:
        image, _ = run(config(color_jitter={"enabled": True, "brightness": 0.2, "contrast": 0.0,
                                            "saturation": 0.0, "hue": 0.0}), seed, flat, mask)
        assert np.ptp(image) < 1e-3
        delta = float(image[0, 0, 0] - 128.0)
        assert abs(delta) <= 0.2 * 255 + 1e-3
        deltas.add(round(delta, 3))
    assert len(deltas) == len(SEEDS)


def test_the_same_seed_repeats_and_other_seeds_differ():
    everything = AugmentationConfig.from_dict({
        "scale": {"enabled": True}, "rotation": {"enabled": True}, "color_jitter": {"enabled": True},
        "blur": {"enabled": True}})
    first, again, other = run(everything, 3), run(everything, 3), run(everything, 4)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("sections", [
    {"horizontal_flip": True, "scale": {"enabled": True}},
    {"horizontal_flip": True, "scale": {"enabled": True}, "rotation": {"enabled": True},
     "color_jitter": {"enabled": True}, "blur": {"enabled": True, "probability": 0.5}},
], ids=["axis_aligned", "everything"])
def test_a_batch_gives_each_example_what_it_gets_alone(sections):
    """`augment_batch` resamples all examples in one op, each with its own map, fill and seed: every example
    comes out as `augment_example` makes it alone, and uint8 masks come out as the int64 ones."""
    augmentation = config(**sections)
    image, mask = tiled_example()
    images = np.stack([image, image[::-1], image[:, ::-1] * 0.5, image])
    masks = np.stack([mask, mask[::-1], mask[:, ::-1], mask])
    fills = np.stack([FILL, FILL + 1.0, FILL + 2.0, FILL + 3.0])
    seeds = np.array([[1, 11], [2, 11], [3, 11], [4, 11]], np.int64)
    batch_images, batch_masks = augment_batch(images, masks, fills, seeds, augmentation, (24, 40))
    _, uint8_masks = augment_batch(images, masks.astype(np.uint8), fills, seeds, augmentation, (24, 40))
    assert uint8_masks.dtype == tf.uint8
    np.testing.assert_array_equal(uint8_masks.numpy(), batch_masks.numpy())
    for index in range(len(images)):
        alone_image, alone_mask = augment_example(images[index], masks[index], fills[index], seeds[index],
                                                  augmentation, (24, 40))
        np.testing.assert_array_equal(batch_masks[index].numpy(), alone_mask.numpy())
        np.testing.assert_allclose(batch_images[index].numpy(), alone_image.numpy(), atol=1e-3)


def test_switching_a_photometric_step_on_does_not_change_the_geometry():
    geometric = {"horizontal_flip": True, "scale": {"enabled": True}, "rotation": {"enabled": True}}
    for seed in SEEDS:
        _, plain = run(AugmentationConfig.from_dict(geometric), seed)
        _, jittered = run(AugmentationConfig.from_dict({**geometric, "color_jitter": {"enabled": True}}), seed)
        np.testing.assert_array_equal(plain, jittered)


def _cutmix_batch(batch: int = 6):
    """Example b: mask ids 10 * b + (0 left half | 1 right half); image channel 0 = the mask id, channel 1 = b."""
    masks = np.zeros((batch, *SIZE), np.int64)
    masks[:, :, 16:] = 1
    masks += 10 * np.arange(batch)[:, None, None]
    images = np.stack([masks, np.broadcast_to(np.arange(batch)[:, None, None], masks.shape),
                       np.zeros_like(masks)], axis=-1).astype(np.float32)
    return images, masks


def test_cutmix_pastes_the_same_box_of_one_partner_into_image_and_mask():
    images, masks = _cutmix_batch()
    pasted = 0
    for seed in SEEDS:
        out_images, out_masks = (value.numpy() for value in cutmix(
            tf.constant(images), tf.constant(masks), tf.constant([seed, 5], tf.int64), probability=1.0))
        np.testing.assert_array_equal(out_images[..., 0], out_masks)  # image and mask moved together
        for example in range(len(images)):
            source = out_images[example, ..., 1].astype(int)  # which example each pixel came from
            partners = set(np.unique(source)) - {example}
            assert len(partners) <= 1
            changed = source != example
            if partners:
                partner = partners.pop()
                rows, columns = np.nonzero(changed)
                box = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
                assert changed[box].all()  # one rectangle
                np.testing.assert_array_equal(out_masks[example][box], masks[partner][box])  # at the same place
                np.testing.assert_array_equal(out_masks[example][~changed], masks[example][~changed])
                pasted += 1
    assert pasted > len(SEEDS)


def test_cutmix_probability_zero_changes_nothing_and_the_seed_repeats():
    images, masks = _cutmix_batch()
    seed = tf.constant([1, 2], tf.int64)
    out_images, out_masks = cutmix(tf.constant(images), tf.constant(masks), seed, probability=0.0)
    np.testing.assert_array_equal(out_masks.numpy(), masks)
    first = cutmix(tf.constant(images), tf.constant(masks), seed, probability=0.5)[1].numpy()
    again = cutmix(tf.constant(images), tf.constant(masks), seed, probability=0.5)[1].numpy()
    np.testing.assert_array_equal(first, again)


def test_the_existing_horizontal_flip_key_still_works_and_defaults_are_the_deeplab_recipe():
    default = AugmentationConfig()
    assert default.horizontal_flip and default.scale.enabled
    assert (default.scale.min_scale, default.scale.max_scale) == (0.5, 2.0)
    assert not (default.rotation.enabled or default.color_jitter.enabled or default.blur.enabled
                or default.cutmix.enabled)
    assert not AugmentationConfig.from_dict({"horizontal_flip": False}).horizontal_flip


@pytest.mark.parametrize("override, key", [
    ({"scale": {"min_scale": 1.5, "max_scale": 1.0}}, "training.augmentation.scale.max_scale"),
    ({"scale": {"min_scale": 0.0}}, "training.augmentation.scale.min_scale"),
    ({"rotation": {"max_degrees": 180.0}}, "training.augmentation.rotation.max_degrees"),
    ({"rotation": {"max_degrees": -1.0}}, "training.augmentation.rotation.max_degrees"),
    ({"color_jitter": {"hue": 0.6}}, "training.augmentation.color_jitter.hue"),
    ({"color_jitter": {"contrast": 1.0}}, "training.augmentation.color_jitter.contrast"),
    ({"color_jitter": {"brightness": -0.1}}, "training.augmentation.color_jitter.brightness"),
    ({"blur": {"probability": 1.5}}, "training.augmentation.blur.probability"),
    ({"blur": {"min_sigma": 2.0, "max_sigma": 1.0}}, "training.augmentation.blur.max_sigma"),
    ({"blur": {"max_sigma": 6.0}}, "training.augmentation.blur.max_sigma"),
    ({"cutmix": {"probability": -0.5}}, "training.augmentation.cutmix.probability"),
    ({"cutmix": {"enabled": "yes"}}, "training.augmentation.cutmix.enabled"),
    ({"mixup": {"enabled": True}}, "training.augmentation.mixup"),
])
def test_bad_augmentation_values_are_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        PipelineConfig.from_dict({"training": {"augmentation": override}})
