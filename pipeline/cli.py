"""The `segpipe` command line: sample data, ingestion, local pipeline runs and Kubeflow compilation.

    segpipe sample-data --format voc|cityscapes --out DIR [--images N] [--size WxH] [--seed S]
    segpipe ingest --format voc|cityscapes --data-dir DIR --out DIR [--splits train,val] [--strict]
                   [--beam-arg=--OPTION=VALUE ...]
    segpipe run [--config FILE] [--data-dir DIR] [--output DIR] [--set section.key=value ...]
                [--beam-arg=[COMPONENT:]--OPTION=VALUE ...] [--until STEP]
    segpipe compile [--config FILE] --out FILE.yaml --data-dir URI [--pipeline-root URI] [--image IMAGE]
    segpipe score --pred DIR --gt DIR --format voc|cityscapes|trainids [--num-classes N] [--json FILE]
                  [--report DIR] [--no-hausdorff]
    segpipe predict --model DIR_OR_TFLITE --out DIR [--overlay DIR] IMAGE_OR_FOLDER [...]
    segpipe track [--output DIR] [--tracking-uri URI]
    segpipe ui [--output DIR] [--port N] [--host H]

Every command accepts `--verbose` (before or after the command name), which brings back TensorFlow,
absl and Beam logs and the traceback of an error. A usage, configuration or dataset error is one line
naming the file, folder or key at fault, with exit code 2. Heavy modules are
imported inside the commands, after logging is configured, so that TensorFlow starts quietly.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import shlex
import sys
import traceback
from pathlib import Path

from components.log_setup import configure_logging

logger = logging.getLogger("segpipe")


def _size(text: str) -> tuple[int, int]:
    """Parses WIDTHxHEIGHT (as people write image sizes) into (height, width), as segpipe passes sizes."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 64x64, got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"each side must be at least 16 pixels, got {text!r}")
    return height, width


def _splits(text: str) -> list[str]:
    """Parses a comma-separated list of split names, each checked as a folder/file name."""
    from components.core.datasets.splits import check_split_name

    splits = [part.strip() for part in text.split(",") if part.strip()]
    if not splits:
        raise argparse.ArgumentTypeError("expected a comma-separated list of splits such as train,val")
    try:
        return [check_split_name(split) for split in splits]
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help, except for required options and options whose help
    already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if action.required or action.default is None or "default" in help_text:
            return help_text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand; every option has help text saying its default."""
    from components.core.datasets import DEFAULT_SPLITS, FORMATS
    from components.core.scoring import FORMATS as SCORE_FORMATS
    from pipeline.config import DEFAULT_CONFIG

    verbose_help = "show TensorFlow, absl and Beam logs, and the traceback of an error"
    parser = argparse.ArgumentParser(prog="segpipe", description=__doc__.split("\n\n")[0],
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        # Also accepted after the subcommand; SUPPRESS keeps a --verbose given before it.
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                         help=verbose_help + " (default: off)")
        return sub

    sample = command("sample-data", "write a synthetic dataset in an official layout")
    sample.add_argument("--format", choices=FORMATS, required=True, help="dataset layout to write")
    sample.add_argument("--out", type=Path, required=True, help="folder to write the dataset to")
    sample.add_argument("--images", type=int, default=None, help="number of images (default: 24 VOC, 6 Cityscapes)")
    sample.add_argument("--size", type=_size, default=None, help="WIDTHxHEIGHT (default: 64x64 VOC, 128x64 Cityscapes)")
    sample.add_argument("--seed", type=int, default=0, help="random seed of the generated images and masks")

    ingest = command("ingest", "convert a dataset folder to TFRecords and a JSON report")
    ingest.add_argument("--format", choices=FORMATS, required=True, help="dataset layout of --data-dir")
    ingest.add_argument("--data-dir", type=Path, required=True,
                        help="dataset folder (VOC: holding VOCdevkit, VOCdevkit or VOC2012; "
                             "Cityscapes: holding leftImg8bit/ and gtFine/)")
    ingest.add_argument("--out", type=Path, required=True, help="output folder (split folders and the report)")
    ingest.add_argument("--splits", type=_splits, default=None,
                        help=f"comma-separated splits to ingest (default: those of {','.join(DEFAULT_SPLITS)} "
                             "the dataset has, saying which)")
    ingest.add_argument("--strict", action="store_true",
                        help="stop at the first bad pair instead of quarantining it (default: quarantine)")
    ingest.add_argument("--beam-arg", dest="beam_args", action="append", default=[], metavar="--OPTION=VALUE",
                        help="a Beam pipeline option, repeatable (e.g. --beam-arg=--runner=DataflowRunner); "
                             "default: DirectRunner, multi-threaded, one thread per core")

    run = command("run", "run the whole pipeline locally (LocalDagRunner, DirectRunner)")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="experiment YAML file")
    run.add_argument("--data-dir", default="", help="dataset root (default: the config's, else synthetic data)")
    run.add_argument("--output", type=Path, default=Path("outputs"), help="folder everything is written to")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override one configuration value, repeatable (default: none)")
    run.add_argument("--beam-arg", dest="beam_args", action="append", default=[],
                     metavar="[COMPONENT:]--OPTION=VALUE",
                     help="a Beam pipeline option for every Beam component, or for one when prefixed with its id "
                          "(e.g. --beam-arg=SegmentationExampleGen:--runner=apache_beam.runners.dask.dask_runner."
                          "DaskRunner), repeatable; follows the local defaults (default: none)")
    run.add_argument("--until", default="", metavar="STEP",
                     help="run only this step (e.g. Trainer) and the steps it depends on (default: the whole pipeline)")

    compile_ = command("compile", "compile the pipeline to a Kubeflow Pipelines YAML")
    compile_.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="experiment YAML file")
    compile_.add_argument("--out", type=Path, required=True, help="pipeline spec to write (.yaml)")
    compile_.add_argument("--data-dir", required=True,
                          help="dataset URI as the cluster sees it, e.g. gs://bucket/VOCdevkit: the default of the "
                               "pipeline's data_root runtime parameter (training_epochs, learning_rate and "
                               "miou_threshold default to the config's values)")
    compile_.add_argument("--pipeline-root", default="gs://BUCKET/pipeline_root",
                          help="URI under which the cluster writes artifacts")
    compile_.add_argument("--image", default="segpipe:0.1.0",
                          help="the pipeline image (infra/docker/pipeline.Dockerfile) as the cluster pulls it, "
                               "e.g. REGISTRY/segpipe:0.1.0 (default: %(default)s)")
    compile_.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                          help="override one configuration value, repeatable (default: none)")

    score = command("score", "score a folder of predicted masks against ground truth")
    score.add_argument("--pred", type=Path, required=True, help="folder of predicted PNGs of class ids (any depth)")
    score.add_argument("--gt", type=Path, required=True,
                       help="ground-truth folder (VOC SegmentationClass, Cityscapes gtFine/<split>, ...)")
    score.add_argument("--format", choices=SCORE_FORMATS, required=True,
                       help="ground-truth format; trainids needs --num-classes")
    score.add_argument("--num-classes", type=int, default=None,
                       help="number of classes (default: the format's; required for trainids)")
    score.add_argument("--json", type=Path, default=None, help="also write the scores to this JSON file (default: no)")
    score.add_argument("--report", type=Path, default=None,
                       help="write per_class.json, per_class.md and confusion_matrix.png to this folder (default: no)")
    score.add_argument("--no-hausdorff", action="store_true",
                       help="skip the (slower) Hausdorff distances (default: computed)")

    predict = command("predict", "write the masks a pushed, exported or TFLite model predicts for image files")
    predict.add_argument("--model", type=Path, required=True,
                         help="a pushed folder (serving_model/<version> of a run), an exported SavedModel folder "
                              "or a .tflite file (with its tflite_models.json beside it)")
    predict.add_argument("--out", type=Path, required=True,
                         help="folder for the masks: palette PNGs of class ids, one per image, same relative paths")
    predict.add_argument("--overlay", type=Path, default=None, metavar="DIR",
                         help="also write colour overlays (the image with each class blended in its colour) to this "
                              "folder, same relative paths (default: no overlays)")
    predict.add_argument("inputs", type=Path, nargs="+", help="JPEG/PNG files or folders of them (searched deeply)")

    track = command("track", "log the newest run of an output folder to MLflow again (after a tracking failure)")
    track.add_argument("--output", type=Path, default=Path("outputs"), help="the run's output folder")
    track.add_argument("--tracking-uri", default="",
                       help="MLflow tracking URI to log to (default: the one the run was configured with)")

    ui = command("ui", "start the MLflow UI on the MLflow store of an output folder")
    ui.add_argument("--output", type=Path, default=Path("outputs"),
                    help="output folder whose store (mlflow.db, mlflow-artifacts/) to open")
    ui.add_argument("--port", type=int, default=5000, help="port to listen on")
    ui.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (0.0.0.0 opens it to the network, without any authentication)")
    return parser


def cmd_sample_data(args) -> int:
    from components.core import sample_data

    summary = sample_data.write_dataset(args.format, args.out, num_images=args.images, image_size=args.size, seed=args.seed)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_ingest(args) -> int:
    from components.example_gen.ingest import ingest

    report = ingest(args.format, str(args.data_dir), str(args.out), splits=args.splits, strict=args.strict,
                    beam_pipeline_args=args.beam_args)
    print(json.dumps(report, indent=2, default=str))
    return 0


def cmd_run(args) -> int:
    from pipeline.config import load_config

    config = load_config(args.config, args.overrides)
    from components.tracking.targets import check_reachable, resolve_tracking_target

    target = resolve_tracking_target(config.runtime.mlflow_tracking_uri, args.output)
    check_reachable(target.uri, origin=target.origin)  # in a second, before TensorFlow and TFX are loaded
    from pipeline.local_runner import run_local

    summary = run_local(config, args.output, data_dir=args.data_dir, beam_args=args.beam_args, until=args.until,
                        source=args.command_line)
    print(summary.describe())
    return 0


def cmd_compile(args) -> int:
    from pipeline.config import load_config

    config = load_config(args.config, args.overrides)
    from pipeline.kubeflow_runner import compile_pipeline

    path = compile_pipeline(config, str(args.out), data_dir=args.data_dir, pipeline_root=args.pipeline_root,
                            image=args.image)
    print(f"Wrote the Kubeflow pipeline spec to {path}")
    return 0


def cmd_score(args) -> int:
    from components.core.scoring import score_folders

    result = score_folders(args.pred, args.gt, args.format, num_classes=args.num_classes,
                           hausdorff=not args.no_hausdorff)
    text = json.dumps(result, indent=2)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    if args.report is not None:
        from components.core.reports import write_evaluation_report

        write_evaluation_report(result, result["class_names"], args.report)
    print(text)
    return 0


def cmd_predict(args) -> int:
    from pipeline.predict import predict_files

    summary = predict_files(args.model, args.inputs, args.out, overlay_dir=args.overlay)
    print(json.dumps(summary, indent=2))
    if summary["failed"]:
        print(f"segpipe: {len(summary['failed'])} of {summary['images']} images failed "
              f"(listed above under 'failed')", file=sys.stderr)
        return 1
    return 0


def cmd_track(args) -> int:
    from pipeline.local_runner import relog_run

    run_id, version, uri = relog_run(args.output, args.tracking_uri)
    print(f"MLflow run:      {run_id} at {uri}")
    if version:
        print(f"Registered model version {version} (alias champion)")
    return 0


def cmd_ui(args) -> int:
    from pipeline.mlflow_ui import serve_ui

    return serve_ui(args.output, args.host, args.port)


COMMANDS = {"sample-data": cmd_sample_data, "ingest": cmd_ingest, "run": cmd_run, "compile": cmd_compile,
            "score": cmd_score, "predict": cmd_predict, "track": cmd_track, "ui": cmd_ui}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `segpipe` console script.

    Exit codes: 0 success; 2 a usage, configuration or dataset error (one line naming the file, folder,
    key or value at fault; for a pipeline step stopped by one, the run's summary); 1 any other failure
    (one line, or the summary of a failed pipeline run: the step, its error, what finished and what
    did not); 130 interrupted by Ctrl-C, 143 by SIGTERM during `segpipe run`. With `--verbose` the
    traceback is printed before it.
    """
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["segpipe", *(sys.argv[1:] if argv is None else argv)])  # an MLflow run's source
    configure_logging(verbose=args.verbose)
    from components.core.datasets.splits import IngestionError
    from pipeline.config import ConfigError

    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM during `segpipe run`
        signal_number = getattr(error, "signal_number", signal.SIGINT)
        hint = "; run the same command again to reuse the finished steps and resume training" \
            if args.command == "run" else ""
        print(f"segpipe: interrupted by {signal.Signals(signal_number).name}{hint}", file=sys.stderr)
        return 128 + signal_number
    except RuntimeError as error:
        if type(error).__name__ != "PipelineRunError":
            return _fail(args, str(error), 1)
        # A failed pipeline step: its summary; exit code 2 when a user error (bad data) stopped it.
        user_error = isinstance(error.__cause__, (ConfigError, IngestionError))
        return _fail(args, str(error), 2 if user_error else 1)
    except (ConfigError, IngestionError) as error:
        prefix = "configuration error: " if isinstance(error, ConfigError) else ""
        return _fail(args, f"{prefix}{error}", 2)
    except (FileNotFoundError, ValueError) as error:
        return _fail(args, str(error), 1)
    except Exception as error:  # pylint: disable=broad-except  # anything else: one line, not raw Python
        message = " ".join(f"{type(error).__name__}: {error}".split())
        return _fail(args, f"{message} (--verbose shows the traceback)", 1)


def _fail(args, message: str, code: int) -> int:
    """Reports the error being handled: its traceback only with --verbose, then one `segpipe:` line."""
    if args.verbose:
        traceback.print_exc()
    print(f"segpipe: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
