"""The experiment's typed configuration: one frozen dataclass per section, validated when built from a dict.

    PipelineConfig
      data        DataConfig          dataset layout, folder, splits, synthetic data
      model       ModelConfig         architecture ("unet" | "deeplabv3plus"), input size, checkpoint
        unet          UNetConfig            depth and filters of the U-Net
        deeplabv3plus DeepLabV3PlusConfig   output stride, ASPP and decoder widths
          backbone      BackboneConfig        "mobilenetv2" | "resnet50" | "xception65" | "xception41", weights file
      preprocessing PreprocessingConfig tf.Transform: aspect-keeping resize or stretch, normalisation
      training    TrainingConfig      steps, batch, and its sub-sections:
        optimizer     OptimizerConfig       "adam" | "sgd", learning rate, momentum, weight decay
        schedule      ScheduleConfig        "cosine" | "poly" | "constant", warm-up
        loss          LossConfig            "cross_entropy" | "boundary_cross_entropy" | "dice" | "cross_entropy_dice",
                                            class weights "none" | "inverse_frequency" | "median_frequency"
        augmentation  AugmentationConfig    horizontal flip, and its sub-sections:
          scale, rotation, color_jitter, blur, cutmix   (each with `enabled` and its ranges)
        (and steps, batch, seed, mixed precision, XLA, checkpoints, early stopping, reduce-on-plateau)
      export      ExportConfig        served model's largest image; TFLite calibration, accepted mIoU loss
      evaluation  EvaluationConfig    blessing thresholds
      runtime     RuntimeConfig       pipeline name, Beam mode, cache, MLflow
        beam          BeamConfig            Beam runner of the Beam stages and extra Beam options

Sizes are always (height, width). Only the model's selected architecture sub-section is used; the other
keeps its defaults. YAML files and ``--set`` overrides are read by ``pipeline.config``; components
receive sections as JSON-able dicts (``to_dict``) and rebuild the same dataclasses (``from_dict``).
Framework-free: imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from components.core.datasets import FORMATS as DATASET_FORMATS
from components.core.hyperparams import Config, ConfigError, require

__all__ = ["ConfigError", "PipelineConfig", "DataConfig", "PreprocessingConfig", "ModelConfig", "UNetConfig", "DeepLabV3PlusConfig",
           "BackboneConfig", "TrainingConfig", "OptimizerConfig", "ScheduleConfig", "LossConfig",
           "AugmentationConfig", "ScaleAugmentationConfig", "RotationAugmentationConfig", "ColorJitterConfig",
           "BlurAugmentationConfig", "CutMixConfig", "ExportConfig", "EvaluationConfig", "RuntimeConfig", "BeamConfig",
           "TRAINER_SECTIONS"]

ARCHITECTURES = ("unet", "deeplabv3plus")
BACKBONES = ("mobilenetv2", "resnet50", "xception65", "xception41")  # = models.backbones.BACKBONES
DECODER_UPSAMPLINGS = ("bilinear", "transposed")  # = models.deeplabv3plus.DECODER_UPSAMPLINGS
OUTPUT_STRIDES = (8, 16)
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "poly", "constant")
LOSSES = ("cross_entropy", "boundary_cross_entropy", "dice", "cross_entropy_dice")  # = losses.LOSS_NAMES
CLASS_WEIGHTINGS = ("none", "inverse_frequency", "median_frequency")  # = preprocessing.CLASS_WEIGHTINGS + none
RESIZE_MODES = ("fit", "fill", "stretch")  # = preprocessing.RESIZE_MODES
NORMALIZATIONS = ("dataset", "imagenet", "minus_one_to_one", "none")  # = preprocessing.NORMALIZATIONS
BEAM_MODES = ("multi_processing", "multi_threading", "in_memory")


PRECISION_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
"""`training.mixed_precision`: the Keras dtype policies training may compute in."""


def _one_of(names: tuple[str, ...]) -> str:
    return "must be " + ", ".join(f"'{name}'" for name in names[:-1]) + f" or '{names[-1]}'" \
        if len(names) > 1 else f"must be '{names[0]}'"


def _is_size(value: Any) -> bool:
    return len(value) == 2 and all(side >= 1 for side in value)


@dataclasses.dataclass(frozen=True)
class DataConfig(Config):
    """Where the data comes from and how it is split.

    Attributes:
        format: dataset layout, "voc" or "cityscapes".
        data_dir: root of the unpacked dataset; empty means "generate synthetic data".
        splits: list files / folders to ingest; the first is trained on, the second evaluated.
        strict: stop at the first bad image/mask pair instead of quarantining it.
        synthetic_images: how many images `make run` generates when `data_dir` is empty.
        synthetic_image_size: (height, width) of generated images.
        seed: seed of the synthetic generator.
    """

    format: str = "voc"
    data_dir: str = ""
    splits: tuple[str, ...] = ("train", "val")
    strict: bool = False
    synthetic_images: int = 48
    synthetic_image_size: tuple[int, int] = (64, 64)
    seed: int = 0

    def validate(self) -> None:
        require(self.format in DATASET_FORMATS, "format", _one_of(DATASET_FORMATS))
        require(len(self.splits) == 2 and len(set(self.splits)) == 2, "splits",
                "must name two different splits: [train_split, eval_split]")
        require(self.synthetic_images >= 4, "synthetic_images", "must be at least 4")
        require(min(self.synthetic_image_size) >= 16, "synthetic_image_size",
                "must be [height, width], each at least 16")


@dataclasses.dataclass(frozen=True)
class UNetConfig(Config):
    """The U-Net (Ronneberger et al. 2015): an encoder of `depth` down-sampling stages and a mirrored decoder.

    Attributes:
        base_filters: filters of the first stage, doubled at each level.
        depth: number of down-sampling stages; the input size must be divisible by 2**depth.
        separable: depthwise-separable 3x3 convolutions instead of full ones.
        skip_attention: squeeze-and-excitation attention on the skip connections.
        dilated_bottom: dilation rate 2 in the bottleneck block.
        batch_norm_momentum: momentum of the batch normalisations' moving statistics (Keras' 0.99 by
            default; 0.9 settles within a few dozen steps).
    """

    base_filters: int = 16
    depth: int = 3
    separable: bool = False
    skip_attention: bool = False
    dilated_bottom: bool = False
    batch_norm_momentum: float = 0.99

    def validate(self) -> None:
        require(0.0 < self.batch_norm_momentum < 1.0, "batch_norm_momentum", "must be in (0, 1)")
        require(self.base_filters >= 1, "base_filters", "must be positive")
        require(1 <= self.depth <= 6, "depth", "must be between 1 and 6")

    @property
    def stride(self) -> int:
        """The largest down-sampling factor inside the network."""
        return 2 ** self.depth


@dataclasses.dataclass(frozen=True)
class BackboneConfig(Config):
    """The feature extractor of an encoder-decoder network.

    Attributes:
        name: "mobilenetv2" or "resnet50" (tf-keras applications), "xception65" or "xception41" (the
            aligned Xception of DeepLabv3+, written in code), each dilated to the output stride.
        weights: a local weights file of the backbone alone (`include_top=False`); None trains from
            scratch. Nothing is downloaded at run time. By default the pipeline standardises images
            with the dataset's per-channel mean and deviation; with pretrained weights set
            `preprocessing.normalization` to the scaling they were trained with ("minus_one_to_one"
            for MobileNetV2 and Xception, "imagenet" for ImageNet-mean networks).
        width_multiplier: MobileNetV2's `alpha`, the aligned Xception's channel scale (1.0 = the
            published width); ResNet50 has none.
    """

    name: str = "mobilenetv2"
    weights: str | None = None
    width_multiplier: float = 1.0

    def validate(self) -> None:
        require(self.name in BACKBONES, "name", _one_of(BACKBONES))
        require(self.weights != "", "weights", "must be a file path or null")
        require(self.width_multiplier > 0, "width_multiplier", "must be positive")


@dataclasses.dataclass(frozen=True)
class DeepLabV3PlusConfig(Config):
    """DeepLabv3+ (Chen et al. 2018): a dilated backbone, atrous spatial pyramid pooling and a decoder.

    Attributes:
        backbone: the feature extractor.
        output_stride: input size / ASPP feature size, 16 or 8; ASPP rates are `aspp_rates` at 16,
            doubled at 8.
        aspp_rates: dilation rates of the three 3x3 ASPP branches at output stride 16.
        aspp_filters: channels of every ASPP branch and of its projection.
        low_level_filters: channels the low-level (stride-4) features are projected to.
        decoder_filters: channels of the decoder's two 3x3 convolutions.
        batch_norm_momentum: momentum of every batch normalisation's moving statistics, backbone
            included. 0.9 is mmsegmentation's (0.1 in PyTorch's convention); MobileNetV2's own 0.999
            left the inference statistics unsettled after 240 steps (train mIoU 0.97, val 0.13).
        upsampling: from the decoder's stride 4 to the input size: "bilinear" (the paper's: logits at
            stride 4, upsampled bilinearly) or "transposed" (two learned stride-2 transposed
            convolutions, logits at the input size; the seed tutorial's decoder).
    """

    backbone: BackboneConfig = dataclasses.field(default_factory=BackboneConfig)
    output_stride: int = 16
    aspp_rates: tuple[int, int, int] = (6, 12, 18)
    aspp_filters: int = 256
    low_level_filters: int = 48
    decoder_filters: int = 256
    batch_norm_momentum: float = 0.9
    upsampling: str = "bilinear"

    def validate(self) -> None:
        require(0.0 < self.batch_norm_momentum < 1.0, "batch_norm_momentum", "must be in (0, 1)")
        require(self.output_stride in OUTPUT_STRIDES, "output_stride", "must be 8 or 16")
        require(self.upsampling in DECODER_UPSAMPLINGS, "upsampling", _one_of(DECODER_UPSAMPLINGS))
        require(all(rate >= 1 for rate in self.aspp_rates), "aspp_rates", "must be positive")
        for key in ("aspp_filters", "low_level_filters", "decoder_filters"):
            require(getattr(self, key) >= 1, key, "must be positive")

    @property
    def stride(self) -> int:
        """The largest down-sampling factor inside the network (the input size must be divisible by it)."""
        return self.output_stride

    @property
    def atrous_rates(self) -> tuple[int, ...]:
        """ASPP dilation rates at the configured output stride."""
        return tuple(rate * 16 // self.output_stride for rate in self.aspp_rates)


@dataclasses.dataclass(frozen=True)
class ModelConfig(Config):
    """Which network to build: one of several architectures, each with its own sub-section.

    Attributes:
        architecture: "unet" or "deeplabv3plus"; selects the sub-section that is used.
        image_size: (height, width) the model sees; tf.Transform resizes to it.
        init_checkpoint: a Keras weights file of this whole model (e.g. an earlier run's) to start
            from; None starts from scratch (or from the backbone's own weights).
        unet: the U-Net's settings.
        deeplabv3plus: DeepLabv3+'s settings.
    """

    architecture: str = "unet"
    image_size: tuple[int, int] = (64, 64)
    init_checkpoint: str | None = None
    unet: UNetConfig = dataclasses.field(default_factory=UNetConfig)
    deeplabv3plus: DeepLabV3PlusConfig = dataclasses.field(default_factory=DeepLabV3PlusConfig)

    def validate(self) -> None:
        require(self.architecture in ARCHITECTURES, "architecture", _one_of(ARCHITECTURES))
        require(self.init_checkpoint != "", "init_checkpoint", "must be a file path or null")
        stride = self.selected.stride
        rule = "2**depth" if self.architecture == "unet" else "the output stride"
        require(_is_size(self.image_size) and all(side % stride == 0 for side in self.image_size),
                "image_size", f"must be [height, width], each divisible by {rule} = {stride}")

    @property
    def selected(self) -> UNetConfig | DeepLabV3PlusConfig:
        """The sub-section of the selected architecture."""
        return getattr(self, self.architecture)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig(Config):
    """The optimizer.

    Attributes:
        name: "adam" (AdamW when `weight_decay` > 0) or "sgd" (with momentum; decoupled weight decay
            when `weight_decay` > 0).
        learning_rate: peak learning rate for a global batch of `reference_batch_size`; the trainer
            scales it linearly with the actual global batch (Goyal et al. 2017).
        reference_batch_size: the global batch `learning_rate` is given for; 0 means the configured
            `training.batch_size` (no scaling).
        momentum: SGD momentum.
        weight_decay: decoupled weight decay; 0 turns it off.
    """

    name: str = "adam"
    learning_rate: float = 3e-3
    reference_batch_size: int = 0
    momentum: float = 0.9
    weight_decay: float = 0.0

    def validate(self) -> None:
        require(self.name in OPTIMIZERS, "name", _one_of(OPTIMIZERS))
        require(self.learning_rate > 0, "learning_rate", "must be positive")
        require(self.reference_batch_size >= 0, "reference_batch_size", "must be 0 (the batch size) or more")
        require(0.0 <= self.momentum < 1.0, "momentum", "must be in [0, 1)")
        require(self.weight_decay >= 0.0, "weight_decay", "must be non-negative")


@dataclasses.dataclass(frozen=True)
class ScheduleConfig(Config):
    """The learning-rate schedule over all training steps.

    Attributes:
        name: "cosine" (decay to 0), "poly" ((1 - step/steps) ** power, the DeepLab recipe) or "constant".
        warmup_steps: linear warm-up from 0 over this many first steps.
        power: exponent of the poly schedule.
    """

    name: str = "cosine"
    warmup_steps: int = 0
    power: float = 0.9

    def validate(self) -> None:
        require(self.name in SCHEDULES, "name", _one_of(SCHEDULES))
        require(self.warmup_steps >= 0, "warmup_steps", "must be non-negative")
        require(self.power > 0, "power", "must be positive")


@dataclasses.dataclass(frozen=True)
class LossConfig(Config):
    """The training loss (formulas in `components.core.losses`); the ignore label never counts.

    Attributes:
        name: "cross_entropy"; "boundary_cross_entropy" (pixels near a label change weigh more);
            "dice" (soft Dice); "cross_entropy_dice" (their weighted sum).
        dice_weight: weight of the Dice term in "cross_entropy_dice".
        boundary_weight: weight of pixels within `boundary_width` of a label change ("boundary_cross_entropy").
        boundary_width: that distance, in pixels.
        class_weights: weights of the cross-entropy's classes (in every loss with a cross-entropy term):
            "none"; "inverse_frequency" (w_c = N / (K n_c)) or "median_frequency" (Eigen & Fergus 2015:
            w_c = median(f) / f_c, f_c = n_c / pixels of the images where c appears), from the class pixel
            counts n_c that tf.Transform's analyzers compute over the training split (K classes present,
            N pixels in all; a class absent from the training split weighs 0).
    """

    name: str = "cross_entropy"
    dice_weight: float = 1.0
    boundary_weight: float = 5.0
    boundary_width: int = 3
    class_weights: str = "none"

    def validate(self) -> None:
        require(self.name in LOSSES, "name", _one_of(LOSSES))
        require(self.class_weights in CLASS_WEIGHTINGS, "class_weights", _one_of(CLASS_WEIGHTINGS))
        require(self.class_weights == "none" or self.name != "dice", "class_weights",
                "weights the cross-entropy: the 'dice' loss has none (use 'cross_entropy_dice')")
        require(self.dice_weight >= 0, "dice_weight", "must be non-negative")
        require(self.boundary_weight >= 1, "boundary_weight", "must be at least 1")
        require(self.boundary_width >= 1, "boundary_width", "must be at least 1")


@dataclasses.dataclass(frozen=True)
class ScaleAugmentationConfig(Config):
    """Random scaling of the whole image, then a random crop (or padding) to the model's input size.

    The transform graph's output (already at the model's input size) is the base resolution.

    Attributes:
        enabled: scale each example by a factor drawn uniformly from [min_scale, max_scale] (bilinear
            for the image, nearest for the mask), then take a random window of the input size; where the
            scaled image is smaller the window is padded with the dataset's mean pixel and the mask with
            the ignore label. Off: only a crop/pad at scale 1 (nothing when the sizes already match).
        min_scale: smallest factor (DeepLab: 0.5).
        max_scale: largest factor (DeepLab: 2.0).
    """

    enabled: bool = True
    min_scale: float = 0.5
    max_scale: float = 2.0

    def validate(self) -> None:
        require(self.min_scale > 0, "min_scale", "must be positive")
        require(self.max_scale >= self.min_scale, "max_scale", f"must be at least min_scale ({self.min_scale})")
        require(self.max_scale <= 8.0, "max_scale", "must be at most 8")


@dataclasses.dataclass(frozen=True)
class RotationAugmentationConfig(Config):
    """Random rotation about the image centre (after scale and crop).

    Attributes:
        enabled: rotate each example by an angle drawn uniformly from [-max_degrees, max_degrees];
            bilinear for the image, nearest for the mask; pixels rotated in from outside are the mean
            pixel in the image and the ignore label in the mask.
        max_degrees: largest angle either way, in [0, 180).
    """

    enabled: bool = False
    max_degrees: float = 30.0

    def validate(self) -> None:
        require(0.0 <= self.max_degrees < 180.0, "max_degrees", "must be in [0, 180)")


@dataclasses.dataclass(frozen=True)
class ColorJitterConfig(Config):
    """Random photometric changes of the image (never of the mask), on pixels scaled to [0, 1] and
    clipped to that range after each step (`tf.image.stateless_random_*`); 0 turns one step off.

    Attributes:
        enabled: apply the steps below, in this order.
        brightness: adds a delta drawn from [-brightness, brightness] (a fraction of the full range), in [0, 1].
        contrast: scales the distance to the mean by a factor in [1 - contrast, 1 + contrast], in [0, 1).
        saturation: scales the saturation by a factor in [1 - saturation, 1 + saturation], in [0, 1).
        hue: shifts the hue by a delta drawn from [-hue, hue] (a fraction of the colour circle), in [0, 0.5].
    """

    enabled: bool = False
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.2

    def validate(self) -> None:
        require(0.0 <= self.brightness <= 1.0, "brightness", "must be in [0, 1]")
        require(0.0 <= self.contrast < 1.0, "contrast", "must be in [0, 1)")
        require(0.0 <= self.saturation < 1.0, "saturation", "must be in [0, 1)")
        require(0.0 <= self.hue <= 0.5, "hue", "must be in [0, 0.5]")


@dataclasses.dataclass(frozen=True)
class BlurAugmentationConfig(Config):
    """Random Gaussian blur of the image (never of the mask), separable, borders mirrored.

    Attributes:
        enabled: blur each example with probability `probability`.
        probability: in [0, 1].
        min_sigma: smallest standard deviation, in pixels of the base resolution.
        max_sigma: largest standard deviation (at most 5); the kernel spans 3 sigma either way.
    """

    enabled: bool = False
    probability: float = 0.5
    min_sigma: float = 0.1
    max_sigma: float = 2.0

    def validate(self) -> None:
        require(0.0 <= self.probability <= 1.0, "probability", "must be in [0, 1]")
        require(self.min_sigma > 0, "min_sigma", "must be positive")
        require(self.max_sigma >= self.min_sigma, "max_sigma", f"must be at least min_sigma ({self.min_sigma})")
        require(self.max_sigma <= 5.0, "max_sigma", "must be at most 5")


@dataclasses.dataclass(frozen=True)
class CutMixConfig(Config):
    """CutMix (Yun et al. 2019) between the examples of a training batch, image and mask alike.

    Attributes:
        enabled: with probability `probability`, paste into an example a box of another example of the
            batch (a random pairing), at the same place in image and mask; the box covers a fraction of
            the image drawn uniformly from [0, 1] (CutMix's alpha = 1), its centre uniform.
        probability: in [0, 1].
    """

    enabled: bool = False
    probability: float = 0.5

    def validate(self) -> None:
        require(0.0 <= self.probability <= 1.0, "probability", "must be in [0, 1]")


@dataclasses.dataclass(frozen=True)
class AugmentationConfig(Config):
    """Augmentation of training examples (never of evaluation data), drawn anew every epoch; image and mask
    always move together (`components.core.augmentation`). Geometric steps, in order: scale and crop,
    horizontal flip, rotation, all in one resampling; photometric steps (colour jitter, blur) come
    before them, so padding stays the mean pixel. CutMix follows, between examples of a batch.

    Attributes:
        horizontal_flip: flip each example left-right with probability 1/2.
        scale: random scale and crop (on by default: DeepLab's 0.5 to 2.0).
        rotation: random rotation (off by default).
        color_jitter: random brightness, contrast, saturation and hue (off by default).
        blur: random Gaussian blur (off by default).
        cutmix: CutMix between examples of a batch (off by default).
    """

    horizontal_flip: bool = True
    scale: ScaleAugmentationConfig = dataclasses.field(default_factory=ScaleAugmentationConfig)
    rotation: RotationAugmentationConfig = dataclasses.field(default_factory=RotationAugmentationConfig)
    color_jitter: ColorJitterConfig = dataclasses.field(default_factory=ColorJitterConfig)
    blur: BlurAugmentationConfig = dataclasses.field(default_factory=BlurAugmentationConfig)
    cutmix: CutMixConfig = dataclasses.field(default_factory=CutMixConfig)

    @property
    def geometric(self) -> bool:
        """Whether any step moves pixels (flip, scale, rotation)."""
        return self.horizontal_flip or self.scale.enabled or self.rotation.enabled


@dataclasses.dataclass(frozen=True)
class TrainingConfig(Config):
    """How the Trainer trains.

    Attributes:
        epochs: passes over `steps_per_epoch` batches; the pipeline asks TFX for epochs x steps_per_epoch
            training steps, and the Trainer trains exactly the number of steps TFX gives it.
        steps_per_epoch: training steps between two validations.
        batch_size: global batch size (split across replicas); one optimizer step per batch.
        gradient_accumulation_steps: each replica's batch is split into this many micro-batches whose
            gradients are summed before the one optimizer step (less memory, same global batch);
            `batch_size` must be a multiple of it times the replicas.
        eval_steps: validation batches after each epoch.
        seed: seed of weight initialisation, shuffling and augmentation, so that a run repeats; None
            draws new ones each run.
        shuffle_buffer: training examples shuffled together (TFXIO's default is 10000, which on a small
            dataset means reading every file hundreds of times before the first step).
        cache_limit_mb: hold the training split's transformed examples in memory after their first pass
            (float32 pixels, uint8 masks: height x width x 13 bytes an example) when they take at most
            this many MB, so that later epochs only shuffle and augment them; 0 never does (every epoch
            decodes and transforms every example again).
        mixed_precision: the Keras dtype policy of training: "float32"; "mixed_float16" (float16
            compute with float32 variables, logits and loss, dynamic loss scaling; pays off on GPUs,
            not on CPUs); "mixed_bfloat16" (bfloat16 compute, float32 variables, logits and loss; pays
            off on GPUs and TPUs and on CPUs with AVX512-BF16 or AMX, e.g. 1.3-1.4x faster steps on the
            2-core EPYC of README "Synthetic data"). The exported model computes in float32 whatever
            the policy.
        jit_compile: compile the training step with XLA.
        checkpoint_every_steps: save the resumable checkpoint (model-run folder, `backup/`) every this
            many steps; 0 saves it at the end of every epoch. A stopped Trainer resumes from it.
        early_stopping_patience: stop when validation mIoU has not improved for this many epochs; 0 = off.
        reduce_on_plateau_patience: multiply the learning rate by `reduce_on_plateau_factor` when
            validation mIoU has not improved for this many epochs; 0 = off. Needs the constant schedule
            (a decaying schedule already sets the rate of every step).
        reduce_on_plateau_factor: that factor.
        optimizer, schedule, loss, augmentation: the sub-sections.
    """

    epochs: int = 8
    steps_per_epoch: int = 30
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    eval_steps: int = 4
    seed: int | None = None
    shuffle_buffer: int = 1000
    cache_limit_mb: int = 2048
    mixed_precision: str = "float32"
    jit_compile: bool = False
    checkpoint_every_steps: int = 0
    early_stopping_patience: int = 0
    reduce_on_plateau_patience: int = 0
    reduce_on_plateau_factor: float = 0.5
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    augmentation: AugmentationConfig = dataclasses.field(default_factory=AugmentationConfig)

    def validate(self) -> None:
        for key in ("epochs", "steps_per_epoch", "batch_size", "eval_steps", "shuffle_buffer",
                    "gradient_accumulation_steps"):
            require(getattr(self, key) >= 1, key, "must be at least 1")
        require(self.mixed_precision in PRECISION_POLICIES, "mixed_precision", _one_of(PRECISION_POLICIES))
        require(self.batch_size % self.gradient_accumulation_steps == 0, "gradient_accumulation_steps",
                f"must divide training.batch_size {self.batch_size}")
        require(self.schedule.warmup_steps < self.total_steps, "schedule.warmup_steps",
                f"must be fewer than the {self.total_steps} training steps")
        for key in ("checkpoint_every_steps", "early_stopping_patience", "reduce_on_plateau_patience",
                    "cache_limit_mb"):
            require(getattr(self, key) >= 0, key, "must be 0 (off) or more")
        require(0.0 < self.reduce_on_plateau_factor < 1.0, "reduce_on_plateau_factor", "must be in (0, 1)")
        require(not self.reduce_on_plateau_patience or
                (self.schedule.name == "constant" and self.schedule.warmup_steps == 0),
                "reduce_on_plateau_patience", "needs training.schedule.name 'constant' without warm-up "
                "(a decaying schedule already sets the rate of every step)")

    @property
    def total_steps(self) -> int:
        """Training steps the pipeline asks for."""
        return self.epochs * self.steps_per_epoch


@dataclasses.dataclass(frozen=True)
class EvaluationConfig(Config):
    """How the Evaluator blesses a model.

    Attributes:
        miou_threshold: the candidate's mIoU must be at least this.
        miou_max_drop: the candidate may fall at most this far below the last blessed model.
    """

    miou_threshold: float = 0.3
    miou_max_drop: float = 0.01

    def validate(self) -> None:
        require(0.0 <= self.miou_threshold <= 1.0, "miou_threshold", "must be in [0, 1]")
        require(self.miou_max_drop >= 0.0, "miou_max_drop", "must be non-negative")


@dataclasses.dataclass(frozen=True)
class ExportConfig(Config):
    """What the Trainer exports besides the weights, and the TFLite models of every trained model.

    Attributes:
        max_image_pixels: the served model's image-bytes signature (`components/trainer/export.py`) refuses
            an image of more pixels (height x width) than this, with an error naming the limit, before
            decoding it at full size for the transform; the default admits a Cityscapes frame
            (2048 x 1024) and a 12-megapixel photo.
        calibration_examples: training examples in the int8 TFLite model's representative dataset, chosen
            greedily so that every class present in the training split is covered first
            (`components.core.tflite`: float32, dynamic-range and full-integer int8 models, each
            evaluated on the evaluation split with the Evaluator's metric code).
        max_miou_drop: the most mIoU a TFLite model may lose against the trained model itself (the
            SavedModel, scored the same way on the same examples); a model beyond it is refused: the
            run log and the side JSON say so, and it is not written among the pushable files. 0.01 =
            one mIoU point.
        latency_runs: single-image inferences timed per model (the median is reported).
        num_threads: threads of the TFLite interpreter; 0 means one per core.
    """

    max_image_pixels: int = 4096 * 3072
    calibration_examples: int = 100
    max_miou_drop: float = 0.01
    latency_runs: int = 5
    num_threads: int = 0

    def validate(self) -> None:
        require(self.max_image_pixels >= 1, "max_image_pixels", "must be at least 1")
        require(self.calibration_examples >= 1, "calibration_examples", "must be at least 1")
        require(0.0 <= self.max_miou_drop <= 1.0, "max_miou_drop", "must be in [0, 1]")
        require(self.latency_runs >= 1, "latency_runs", "must be at least 1")
        require(self.num_threads >= 0, "num_threads", "must be 0 (one per core) or more")

BEAM_RUNNERS = ("DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner", "PrismRunner")
"""Runners Beam knows by name; any other runner is given by its full class name (for example Beam's Dask
runner, `apache_beam.runners.dask.dask_runner.DaskRunner`)."""
DIRECT_RUNNER = "DirectRunner"
REQUIRED_RUNNER_OPTIONS = {"DataflowRunner": ("project", "region", "temp_location")}
"""Options a runner cannot start without, checked when the config is read rather than in a pod."""
_BEAM_OPTION = re.compile(r"--[A-Za-z][A-Za-z0-9_]*(=.*)?", re.DOTALL)
_CLASS_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def beam_option_name(arg: str) -> str:
    """`--name=value` or `--name` -> `name`."""
    return arg[2:].split("=", 1)[0]


@dataclasses.dataclass(frozen=True)
class BeamConfig(Config):
    """The Beam runner of the pipeline's Beam stages (ExampleGen, StatisticsGen, Transform, Evaluator),
    locally and in Kubeflow pods alike.

    Attributes:
        runner: "DirectRunner" (the default: in the process, or in the pod on Kubeflow; its running mode
            and workers are `runtime.beam_mode` and `runtime.beam_workers`), a runner Beam knows by name
            ("DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner", "PrismRunner"), or the
            full class name of another one (e.g. "apache_beam.runners.dask.dask_runner.DaskRunner").
        args: further Beam pipeline options, each "--name=value" (or "--flag"), passed as they are
            after the runner's: e.g. ["--project=p", "--region=europe-west1",
            "--temp_location=gs://bucket/tmp"] for Dataflow, ["--flink_master=flink:8081",
            "--environment_type=EXTERNAL", "--environment_config=localhost:50000"] for Flink, or
            ["--s3_endpoint_url=http://minio.mlflow:9000"] for an S3-compatible store. The runner is
            chosen by `runner` only; Dataflow needs --project, --region and --temp_location.
    """

    runner: str = DIRECT_RUNNER
    args: tuple[str, ...] = ()

    def validate(self) -> None:
        require(self.runner in BEAM_RUNNERS or _CLASS_PATH.fullmatch(self.runner) is not None, "runner",
                f"must be one of {', '.join(BEAM_RUNNERS)} or a runner's full class name "
                f"(module.path.ClassName), got {self.runner!r}")
        for arg in self.args:
            require(_BEAM_OPTION.fullmatch(arg) is not None, "args",
                    f"must hold Beam options written --name=value or --flag, got {arg!r}")
            require(beam_option_name(arg) != "runner", "args",
                    f"must not set the runner ({arg!r}): set runtime.beam.runner")
        given = {beam_option_name(arg) for arg in self.args}
        missing = [name for name in REQUIRED_RUNNER_OPTIONS.get(self.runner, ()) if name not in given]
        require(not missing, "args", f"must set {', '.join('--' + name for name in missing)} for {self.runner}")

    @property
    def is_direct(self) -> bool:
        """Whether the Beam stages run on DirectRunner."""
        return self.runner == DIRECT_RUNNER


@dataclasses.dataclass(frozen=True)
class RuntimeConfig(Config):
    """Where and how the pipeline runs.

    Attributes:
        pipeline_name: name of the TFX pipeline (and default name of the MLflow experiment and model).
        beam: the Beam runner and extra Beam options (`BeamConfig`).
        beam_mode: DirectRunner running mode of the Beam components ("multi_processing",
            "multi_threading" or "in_memory"); local runs keep the ExampleGen multi-threaded and the
            Evaluator in-memory, the modes measured fastest for them (see `components.beam_options`).
        beam_workers: DirectRunner workers; 0 means one per core.
        enable_cache: reuse TFX results of unchanged inputs.
        mlflow_tracking_uri: MLflow store; empty means a SQLite file in the output folder.
        mlflow_experiment: experiment name; empty means the pipeline name.
        mlflow_registered_model: name of the registered model that pushed models become versions of;
            empty means the pipeline name.
    """

    pipeline_name: str = "segpipe"
    beam_mode: str = "multi_processing"
    beam_workers: int = 0
    enable_cache: bool = False
    mlflow_tracking_uri: str = ""
    mlflow_experiment: str = ""
    mlflow_registered_model: str = ""
    beam: BeamConfig = dataclasses.field(default_factory=BeamConfig)

    def validate(self) -> None:
        require(self.beam_mode in BEAM_MODES, "beam_mode", _one_of(BEAM_MODES))
        require(self.beam_workers >= 0, "beam_workers", "must be 0 (one per core) or more")
        require(re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", self.pipeline_name) is not None,
                "pipeline_name", "must be lower-case letters, digits and '-' (as Kubeflow requires)")

    @property
    def experiment(self) -> str:
        """The MLflow experiment runs are logged to."""
        return self.mlflow_experiment or self.pipeline_name

    @property
    def registered_model(self) -> str:
        """The MLflow registered model pushed models become versions of."""
        return self.mlflow_registered_model or self.pipeline_name


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig(Config):
    """tf.Transform's preprocessing (embedded in the exported model): image and mask to `model.image_size`.

    Attributes:
        resize: "fit" keeps the aspect ratio: the image is scaled so that its longer side (relative to
            the model's input) fits, bilinear for the image and nearest for the mask, and the rest of
            the input is padded, with the training split's mean pixel in the image and the ignore label
            (255) in the mask, at the bottom and right; "fill" keeps the aspect ratio with the shorter
            side fitting, so the scaled image covers the input and is cropped to its centre (predictions
            are mapped back over the cropped-away borders by repeating their edge, and scored there);
            "stretch" resizes both to the input size, aspect ratio lost.
        normalization: "dataset": per-channel mean and standard deviation of the training split's
            pixels (tf.Transform analyzers, padding excluded); "imagenet": ImageNet's constants (mean
            123.675, 116.28, 103.53, std 58.395, 57.12, 57.375, for backbones trained on them);
            "minus_one_to_one": (x - 127.5) / 127.5 (MobileNet's and Xception's); "none": pixels 0-255.
    """

    resize: str = "fit"
    normalization: str = "dataset"

    def validate(self) -> None:
        require(self.resize in RESIZE_MODES, "resize", _one_of(RESIZE_MODES))
        require(self.normalization in NORMALIZATIONS, "normalization", _one_of(NORMALIZATIONS))


TRAINER_SECTIONS = ("model", "training")
"""The sections training depends on: the Trainer's `custom_config` (hence TFX's cache key) holds only these."""


@dataclasses.dataclass(frozen=True)
class PipelineConfig(Config):
    """The whole experiment: one YAML file (plus the files it is based on and any overrides)."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    preprocessing: PreprocessingConfig = dataclasses.field(default_factory=PreprocessingConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    def trainer_sections(self) -> dict[str, Any]:
        """The part of `to_dict()` the Trainer receives (see `TRAINER_SECTIONS`)."""
        values = self.to_dict()
        return {name: values[name] for name in TRAINER_SECTIONS}
