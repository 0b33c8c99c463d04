"""Benchmark: ingestion on Beam's Dask runner (a local cluster of ``--workers`` processes) against DirectRunner.

Both run :func:`components.example_gen.ingest.ingest` (what ``segpipe ingest`` runs) on the same generated
files in the same run and must write the same bytes (shards and report), which is checked:

* ``ours``: ``--runner=apache_beam.runners.dask.dask_runner.DaskRunner --dask_local_workers=N``: segpipe
  starts a ``distributed.LocalCluster`` of N single-threaded worker processes on 127.0.0.1, each of which
  imports TensorFlow before its first shard; timed end to end (cluster start and stop included);
* ``baseline``: the default of ``segpipe ingest``: DirectRunner, multi-threaded, N threads.

The dataset is the one of ``bench_ingest.py``: VOC layout, ~500x375 JPEGs, ``--distinct`` pictures copied
under new ids up to ``--images`` pairs. Both also run on the ``--distinct`` pairs alone; the difference
gives each runner's steady-state rate and its fixed cost (reported beside the end-to-end figures).

The last line printed is one JSON object: ``{"name", "value", "baseline", "ratio", "unit", ...}``;
``ratio`` = Dask rate / DirectRunner rate (end to end), higher is better.

Usage: ``python benchmarks/bench_ingest_dask.py [--images 2913] [--distinct 40] [--workers 2]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from bench_ingest import make_dataset  # pylint: disable=import-error  # benchmarks/ is the script's folder

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def timed_ingest(root: Path, out_dir: Path, beam_args: list[str]) -> tuple[float, int]:
    """Runs ``ingest`` on ``root``; returns (seconds, examples written)."""
    from components.example_gen.ingest import ingest  # pylint: disable=import-outside-toplevel

    start = time.perf_counter()
    report = ingest("voc", str(root.parent.parent), str(out_dir), splits=["train", "val"], beam_pipeline_args=beam_args)
    return time.perf_counter() - start, report["totals"]["written"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2913,
                        help="image/mask pairs to ingest (default: VOC 2012 segmentation train + val)")
    parser.add_argument("--distinct", type=int, default=40, help="distinct pictures drawn (the rest are copies)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes and DirectRunner threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import tensorflow  # noqa: F401  # pylint: disable=unused-import,import-outside-toplevel

    import components.example_gen.ingest  # noqa: F401  # pylint: disable=unused-import,import-outside-toplevel
    from components.beam_options import ingestion_args  # pylint: disable=import-outside-toplevel

    direct_args = ingestion_args(args.workers)
    dask_args = [f"--runner={DASK_RUNNER}", f"--dask_local_workers={args.workers}"]
    with tempfile.TemporaryDirectory(prefix="bench_ingest_dask_") as tmp:
        tmp_dir = Path(tmp)
        root = make_dataset(tmp_dir / "data", args.images, args.distinct)
        small_root = make_dataset(tmp_dir / "small", args.distinct, args.distinct)
        load_before = os.getloadavg()[0]
        direct_seconds, direct_count = timed_ingest(root, tmp_dir / "direct", direct_args)
        dask_seconds, dask_count = timed_ingest(root, tmp_dir / "dask", dask_args)
        small_direct_seconds, small_count = timed_ingest(small_root, tmp_dir / "direct_small", direct_args)
        small_dask_seconds, _ = timed_ingest(small_root, tmp_dir / "dask_small", dask_args)
        load_after = os.getloadavg()[0]
        if _files(tmp_dir / "dask") != _files(tmp_dir / "direct"):
            raise SystemExit("the Dask runner wrote other files than DirectRunner")

    def steady(seconds: float, small_seconds: float) -> float:
        return (direct_count - small_count) / max(seconds - small_seconds, 1e-9)

    dask_steady, direct_steady = steady(dask_seconds, small_dask_seconds), steady(direct_seconds, small_direct_seconds)
    dask_fixed = small_dask_seconds - small_count / dask_steady
    direct_fixed = small_direct_seconds - small_count / direct_steady
    print(f"DirectRunner ({args.workers} threads): {direct_count} examples in {direct_seconds:.1f} s, "
          f"{small_count} in {small_direct_seconds:.1f} s; Dask ({args.workers} processes): {dask_count} in "
          f"{dask_seconds:.1f} s, {small_count} in {small_dask_seconds:.1f} s; same bytes written; "
          f"load average {load_before:.1f} -> {load_after:.1f}")
    print(json.dumps({
        "name": "ingest_dask_examples_per_second",
        "value": round(dask_count / dask_seconds, 2),
        "baseline": round(direct_count / direct_seconds, 2),
        "ratio": round((dask_count / dask_seconds) / (direct_count / direct_seconds), 3),
        "unit": "examples/s",
        "images": args.images,
        "image_size": "500x375",
        "workers": args.workers,
        "dask_seconds": round(dask_seconds, 2),
        "direct_seconds": round(direct_seconds, 2),
        "dask_steady_state": round(dask_steady, 2),
        "direct_steady_state": round(direct_steady, 2),
        "steady_state_ratio": round(dask_steady / direct_steady, 3),
        "dask_fixed_seconds": round(dask_fixed, 2),
        "direct_fixed_seconds": round(direct_fixed, 2),
        "cpus": os.cpu_count(),
        "load_average": round(load_before, 2),
    }))


if __name__ == "__main__":
    main()
