"""Tests of the Beam ingestion path: ``ingest()`` and the SegmentationExampleGen executor/component.

Beam runs on the in-memory DirectRunner over tiny datasets. Every kind of bad input is checked through
the exact report (file and reason per quarantined pair; listed = written + quarantined per split), and
the written examples are validated with TFDV against ``schemas/raw_schema.pbtxt``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import message, text_format
from PIL import Image
from tensorflow_metadata.proto.v0 import schema_pb2

from components.core import datasets, examples, ingestion, sample_data
from components.core.datasets.splits import IngestionError, PairCandidate, SplitPlan
from components.core.label_maps import load_label_map, schemas_dir
from components.example_gen import ingest as ingest_module
from components.example_gen.ingest import ingest

VOC_MAP = load_label_map("pascal_voc")


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("voc")
    sample_data.write_voc_dataset(out, num_images=12, image_size=(24, 32), seed=2)
    return out


@pytest.fixture(scope="module")
def cityscapes_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cityscapes")
    sample_data.write_cityscapes_dataset(out, num_images=4, image_size=(16, 32), seed=2)
    return out


def _records(split_dir: Path) -> list[bytes]:
    """The serialised examples of a split folder's gzip TFRecord shards, as written."""
    files = sorted(str(path) for path in split_dir.glob("data_tfrecord-*.gz"))
    assert files, f"no TFRecord shards in {split_dir}"
    return [record.numpy() for record in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _read_examples(split_dir: Path) -> list[examples.DecodedExample]:
    return [examples.from_tf_example(record) for record in _records(split_dir)]


def _ids(split: str, root: Path) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()


def _load_schema() -> schema_pb2.Schema:
    return text_format.Parse((schemas_dir() / "raw_schema.pbtxt").read_text(), schema_pb2.Schema())


def _anomalies(serialized: list[bytes], path: Path) -> dict:
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for record in serialized:
            writer.write(record)
    statistics = tfdv.generate_statistics_from_tfrecord(str(path))
    return dict(tfdv.validate_statistics(statistics, _load_schema()).anomaly_info)


# ---------------------------------------------------------------------------------------------------
# Good data: generated and real
# ---------------------------------------------------------------------------------------------------

def test_both_layouts_ingest_losslessly_and_validate_against_the_schema(voc_dir, cityscapes_dir, tmp_path):
    voc_report = ingest("voc", str(voc_dir), str(tmp_path / "voc"), splits=["train", "val"])
    cs_report = ingest("cityscapes", str(cityscapes_dir), str(tmp_path / "cs"), splits=["train", "val", "test"])

    voc_root = voc_dir / "VOCdevkit" / "VOC2012"
    for split in ("train", "val"):
        written = _read_examples(tmp_path / "voc" / split)
        assert sorted(d.example.example_id for d in written) == sorted(_ids(split, voc_root))
        assert voc_report["splits"][split] == {
            "source": str(voc_root / "ImageSets" / "Segmentation" / f"{split}.txt"),
            "listed": len(written), "written": len(written), "quarantined": 0, "empty": False}
        for decoded in written:
            pair = decoded.example
            assert (pair.dataset, pair.split, pair.city, pair.image_format) == ("pascal_voc", split, "", "jpeg")
            assert pair.image_encoded == (voc_root / "JPEGImages" / f"{pair.example_id}.jpg").read_bytes()
            np.testing.assert_array_equal(
                pair.mask, np.array(Image.open(voc_root / "SegmentationClass" / f"{pair.example_id}.png")))
            assert decoded.classes_present == examples.classes_present(pair.mask)

    cs_written = _read_examples(tmp_path / "cs" / "train") + _read_examples(tmp_path / "cs" / "val")
    assert {(d.example.split, d.example.city) for d in cs_written} <= {
        (split, city) for split in ("train", "val") for city in os.listdir(cityscapes_dir / "leftImg8bit" / split)}
    for decoded in cs_written:
        pair = decoded.example
        label_ids = np.array(Image.open(cityscapes_dir / "gtFine" / pair.split / pair.city /
                                        f"{pair.example_id}_gtFine_labelIds.png"))
        np.testing.assert_array_equal(pair.mask, load_label_map("cityscapes").to_train_ids(label_ids))
        assert pair.image_format == "png" and pair.dataset == "cityscapes"
    assert cs_report["skipped_splits"] == [
        {"split": "test",
         "reason": "the Cityscapes test split has no usable labels (its public gtFine masks are blank)"}]
    assert "test" not in cs_report["splits"] and not (tmp_path / "cs" / "test").exists()
    assert cs_report["totals"] == {"listed": 4, "written": 4, "quarantined": 0, "overlapping_ids": 0}

    # TFDV: every written example of both datasets (plus one whose mask is all ignore) fits the schema...
    all_ignored = examples.serialize_example(examples.SegmentationExample(
        "2007_000099", "pascal_voc", "train", cs_written[0].example.image_encoded, "png", 16, 32,
        np.full((16, 32), 255, dtype=np.uint8)))
    serialized = [record for directory in ("voc/train", "voc/val", "cs/train", "cs/val")
                  for record in _records(tmp_path / directory)] + [all_ignored]
    assert _anomalies(serialized, tmp_path / "all.gz") == {}
    # ... and the schema is not vacuous: a foreign format, an out-of-range class and a missing city are caught.
    broken = examples.to_tf_example(cs_written[0].example)
    broken.features.feature["image/format"].bytes_list.value[:] = [b"gif"]
    broken.features.feature["classes_present"].int64_list.value.append(25)
    del broken.features.feature["city"]
    assert set(_anomalies([broken.SerializeToString()] + serialized, tmp_path / "broken.gz")) == {
        "image/format", "classes_present", "city"}


def test_real_cityscapes_sample_ingests_and_both_real_datasets_fit_the_schema(shared_data, tmp_path):
    report = ingest("cityscapes", str(shared_data / "cityscapes_sample"), str(tmp_path / "cs"), splits=["val"])
    assert report["totals"] == {"listed": 1, "written": 1, "quarantined": 0, "overlapping_ids": 0}
    (record,) = _records(tmp_path / "cs" / "val")
    real = examples.from_tf_example(record)
    assert (real.example.example_id, real.example.city, real.example.height, real.example.width) == (
        "frankfurt_000000_000294", "frankfurt", 128, 256)
    assert real.classes_present == [0, 1, 2, 4, 5, 7, 8, 10, 11, 13]

    # the real VOC sample's examples, encoded as ConvertPairFn encodes them (its Beam run is tested below)
    voc_root = datasets.resolve_dataset_root("voc", str(shared_data / "voc_sample"))
    voc_records = [examples.serialize_example(ingestion.load_pair(candidate, VOC_MAP))
                   for candidate in datasets.plan_split("voc", voc_root, "train").candidates]
    assert _anomalies(voc_records + [record], tmp_path / "real.gz") == {}


def test_real_voc_sample_with_its_empty_val_list(shared_data, tmp_path):
    (tmp_path / "out" / "train").mkdir(parents=True)  # leftovers of a previous run into the same folder
    (tmp_path / "out" / "train" / "data_tfrecord-00007-of-00009.gz").write_bytes(b"stale")
    (tmp_path / "out" / "train" / "notes.txt").write_text("kept")

    report = ingest("voc", str(shared_data / "voc_sample"), str(tmp_path / "out"))

    root = shared_data / "voc_sample" / "VOCdevkit" / "VOC2012"
    val_list = root / "ImageSets" / "Segmentation" / "val.txt"
    assert report["splits"]["val"] == {"source": str(val_list), "listed": 0, "written": 0, "quarantined": 0,
                                       "empty": True}
    assert report["warnings"] == [f"split 'val' is empty: nothing listed in {val_list}"]
    assert report["totals"] == {"listed": 3, "written": 3, "quarantined": 0, "overlapping_ids": 0}
    assert report["reconciled"] is True
    assert json.loads((tmp_path / "out" / "ingestion_report.json").read_text()) == report
    written = {d.example.example_id: d.classes_present for d in _read_examples(tmp_path / "out" / "train")}
    assert written == {"2011_000003": [0, 5, 15], "2011_000006": [0, 9, 15, 18], "2011_000025": [0, 6, 7]}
    assert _read_examples(tmp_path / "out" / "val") == []  # one empty shard: downstream globs still match
    assert not (tmp_path / "out" / ingest_module.STAGING_DIR_NAME).exists()
    *shards, notes = sorted(path.name for path in (tmp_path / "out" / "train").iterdir())
    assert notes == "notes.txt"  # the user's file stays; only this run's shards are there (one per thread)
    assert shards and all(re.fullmatch(rf"data_tfrecord-\d{{5}}-of-{len(shards):05d}\.gz", name) for name in shards)
    with pytest.raises(IngestionError, match="split 'val' is empty"):
        ingest("voc", str(shared_data / "voc_sample"), str(tmp_path / "strict"), strict=True)


# ---------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------

def _break_voc(root: Path) -> list[dict]:
    """Breaks a generated VOC train split in every way ingestion must survive; returns the expected quarantine."""
    lists = root / "ImageSets" / "Segmentation"
    good = _ids("train", root)
    image = {i: root / "JPEGImages" / f"{i}.jpg" for i in good}
    mask = {i: root / "SegmentationClass" / f"{i}.png" for i in good}
    corrupt, truncated, bad_mask, small_mask, bad_index, no_mask = good[:6]
    image[corrupt].write_bytes(b"\x00garbage")
    image[truncated].write_bytes(image[truncated].read_bytes()[:200])
    mask[bad_mask].write_bytes(mask[bad_mask].read_bytes()[:60])
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(mask[small_mask])
    values = np.array(Image.open(mask[bad_index]))
    values[0, 0] = 99
    Image.fromarray(values).save(mask[bad_index])
    mask[no_mask].unlink()
    listed = good + ["2099_000001", "../../secret", "/etc/passwd", good[0]]
    (lists / "train.txt").write_text("\n".join(listed) + "\n")
    expected = [
        (corrupt, str(image[corrupt]), "image is not a JPEG or PNG file"),
        (truncated, str(image[truncated]), "corrupt or truncated image"),
        (bad_mask, str(mask[bad_mask]), "corrupt or truncated mask"),
        (small_mask, str(mask[small_mask]), f"mask size 8x8 differs from image size 32x24 ({image[small_mask]})"),
        (bad_index, str(mask[bad_index]),
         "mask value(s) 99 are neither label ids of pascal_voc (0-20) nor the ignore label 255"),
        (no_mask, str(mask[no_mask]), "mask file not found"),
        ("2099_000001", str(root / "JPEGImages" / "2099_000001.jpg"), "image file not found"),
        ("../../secret", str(lists / "train.txt"), "id '../../secret' reaches outside the dataset root"),
        ("/etc/passwd", str(lists / "train.txt"),
         "id '/etc/passwd' is an absolute path, reaching outside the dataset root"),
        (good[0], str(lists / "train.txt"), f"id '{good[0]}' listed more than once"),
    ]
    return sorted(({"split": "train", "id": i, "file": f, "reason": r} for i, f, r in expected),
                  key=lambda record: (record["id"], record["file"], record["reason"]))


def _normalise_decoder_detail(record: dict) -> dict:
    """Drops Pillow's detail, e.g. "(image file is truncated ...)", from a 'corrupt or truncated' reason."""
    if record["reason"].startswith("corrupt or truncated"):
        return {**record, "reason": record["reason"].split(" (")[0]}
    return record


def test_every_kind_of_bad_voc_pair_is_quarantined_with_file_and_reason(voc_dir, tmp_path):
    shutil.copytree(voc_dir, tmp_path / "data")
    root = tmp_path / "data" / "VOCdevkit" / "VOC2012"
    expected = _break_voc(root)
    num_good = len(_ids("train", root)) - len(expected)  # the list now also holds 4 bad lines
    # an RGB mask in VOC colours is not a bad pair: it is converted
    rgb_id = _ids("train", root)[6]
    rgb_mask = root / "SegmentationClass" / f"{rgb_id}.png"
    indices = np.array(Image.open(rgb_mask))
    Image.fromarray(VOC_MAP.colorize(indices)).save(rgb_mask)
    # ... but a colour outside the VOC colour map is, and the reason names the colour
    unknown_colour_id = _ids("val", root)[0]
    unknown_colour_mask = root / "SegmentationClass" / f"{unknown_colour_id}.png"
    colours = VOC_MAP.colorize(np.array(Image.open(unknown_colour_mask)))
    colours[3, 3] = (10, 200, 30)
    Image.fromarray(colours).save(unknown_colour_mask)
    expected.append({"split": "val", "id": unknown_colour_id, "file": str(unknown_colour_mask),
                     "reason": "RGB mask: colour(s) not in the pascal_voc label map: (10, 200, 30)"})

    report = ingest("voc", str(tmp_path / "data"), str(tmp_path / "out"), splits=["train", "val"])

    assert [_normalise_decoder_detail(record) for record in report["quarantine"]] == expected
    assert all("(" in r["reason"] for r in report["quarantine"] if r["reason"].startswith("corrupt or truncated"))
    train = report["splits"]["train"]
    assert (train["listed"], train["written"], train["quarantined"]) == (len(expected) - 1 + num_good, num_good,
                                                                         len(expected) - 1)
    val = report["splits"]["val"]
    num_val = len(_ids("val", root))
    assert (val["listed"], val["written"], val["quarantined"]) == (num_val, num_val - 1, 1)
    assert report["reconciled"] is True
    written = {d.example.example_id: d.example for d in _read_examples(tmp_path / "out" / "train")}
    assert len(written) == num_good
    np.testing.assert_array_equal(written[rgb_id].mask, indices)


def test_bad_cityscapes_pairs_are_quarantined(cityscapes_dir, tmp_path):
    root = tmp_path / "cs"
    shutil.copytree(cityscapes_dir, root)
    images = sorted((root / "leftImg8bit" / "train").rglob("*_leftImg8bit.png"))
    masks = [Path(str(p).replace("/leftImg8bit/", "/gtFine/").replace("_leftImg8bit.png", "_gtFine_labelIds.png"))
             for p in images]
    masks[0].unlink()  # an image with no mask
    images[1].unlink()  # a mask with no image
    report = ingest("cityscapes", str(root), str(tmp_path / "out"), splits=["train"])
    frame = lambda path: path.name.split("_leftImg8bit")[0].split("_gtFine")[0]  # noqa: E731
    assert report["quarantine"] == sorted([
        {"split": "train", "id": frame(images[0]), "file": str(masks[0]), "reason": "mask file not found"},
        {"split": "train", "id": frame(images[1]), "file": str(images[1]), "reason": "image file not found"},
    ], key=lambda record: record["id"])
    assert report["splits"]["train"] == {"source": str(root / "leftImg8bit" / "train"), "listed": len(images),
                                         "written": len(images) - 2, "quarantined": 2, "empty": len(images) == 2}
    assert [d.example.example_id for d in _read_examples(tmp_path / "out" / "train")] == [frame(p) for p in images[2:]]


def test_strict_mode_fails_on_the_first_bad_pair_naming_file_and_reason(voc_dir, tmp_path):
    shutil.copytree(voc_dir, tmp_path / "data")
    root = tmp_path / "data" / "VOCdevkit" / "VOC2012"
    first_id = sorted(_ids("train", root))[0]
    mask = root / "SegmentationClass" / f"{first_id}.png"
    # A good run's output first: a failed run into the same folder must not leave it looking good.
    ingest("voc", str(tmp_path / "data"), str(tmp_path / "out"), beam_pipeline_args=["--direct_running_mode=in_memory"])
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(mask)
    for mode in ("in_memory", "multi_threading"):
        with pytest.raises(IngestionError) as error:
            ingest("voc", str(tmp_path / "data"), str(tmp_path / "out"), strict=True,
                   beam_pipeline_args=[f"--direct_running_mode={mode}", "--direct_num_workers=2"])
        message = (f"{mask}: mask size 8x8 differs from image size 32x24 "
                   f"({root / 'JPEGImages' / f'{first_id}.jpg'}) (split 'train', id '{first_id}')")
        assert str(error.value) == message
        # Stopped: no report, no shard, no staging or Beam temporary folder; a marker says it failed.
        leftovers = sorted(str(path.relative_to(tmp_path / "out")) for path in (tmp_path / "out").rglob("*"))
        assert leftovers == ["INGESTION_FAILED.json", "train", "val"], mode
        marker = json.loads((tmp_path / "out" / "INGESTION_FAILED.json").read_text())
        assert marker == {"status": "failed", "error": message, "strict_stop": {
            "split": "train", "id": first_id, "file": str(mask), "reason": error.value.reason}}

    # Problems visible in the listing fail before any Beam pipeline runs: nothing is written.
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("../outside\n")
    with pytest.raises(IngestionError, match=r"val.txt: id '\.\./outside' reaches outside the dataset root"):
        ingest("voc", str(tmp_path / "data"), str(tmp_path / "strict_listing"), strict=True)
    assert not (tmp_path / "strict_listing").exists()


def test_layout_and_list_errors_come_before_beam(voc_dir, cityscapes_dir, tmp_path):
    with pytest.raises(IngestionError, match="not a Cityscapes folder.*looks like a PASCAL VOC 2012 folder"):
        ingest("cityscapes", str(voc_dir), str(tmp_path / "a"))
    with pytest.raises(IngestionError,
                       match=r"trainaug.txt: split list file not found \(available lists: train, trainval, val\)"):
        ingest("voc", str(voc_dir), str(tmp_path / "b"), splits=["trainaug"])
    with pytest.raises(IngestionError, match="no split left to ingest"):
        ingest("cityscapes", str(cityscapes_dir), str(tmp_path / "c"), splits=["test"])
    assert not any((tmp_path / name).exists() for name in "abc")


def test_an_unexpected_decoder_failure_is_quarantined_not_raised():
    convert = ingest_module.WriteShardFn("pascal_voc", "", "")  # setup() not called: no label map, so load_pair fails
    candidate = PairCandidate("pascal_voc", "train", "x", "/nowhere/x.jpg", "/nowhere/x.png")
    serialized, record = convert.convert(candidate)
    assert serialized is None and record["status"] == ingest_module.QUARANTINE_STATUS
    assert record["file"] == "/nowhere/x.jpg"
    assert record["reason"] == "image file not found"
    convert.setup()
    convert._label_map = None  # pylint: disable=protected-access
    image = tf.io.encode_png(tf.zeros([2, 2, 3], tf.uint8)).numpy()
    mask = examples.encode_mask_png(np.zeros((2, 2), np.uint8))
    with tf.io.gfile.GFile("ram://x.png", "wb") as handle:
        handle.write(image)
    with tf.io.gfile.GFile("ram://m.png", "wb") as handle:
        handle.write(mask)
    serialized, record = convert.convert(PairCandidate("pascal_voc", "train", "x", "ram://x.png", "ram://m.png"))
    assert serialized is None and record["status"] == ingest_module.QUARANTINE_STATUS
    assert record["reason"].startswith("unexpected error: AttributeError")


def test_shards_are_contiguous_runs_of_the_listing():
    candidates = tuple(PairCandidate("pascal_voc", "train", f"{index:03d}", f"/d/{index}.jpg", f"/d/{index}.png")
                       for index in range(7))
    plan = SplitPlan("pascal_voc", "train", "/d/train.txt", candidates, root="/d")
    tasks = ingest_module.shard_tasks(plan, "/out/train", pairs_per_shard=3)
    assert [task.candidates for task in tasks] == [candidates[0:3], candidates[3:6], candidates[6:]]
    assert [task.file_name for task in tasks] == [f"data_tfrecord-0000{index}-of-00003.gz" for index in range(3)]
    (empty,) = ingest_module.shard_tasks(SplitPlan("pascal_voc", "val", "/d/val.txt", (), root="/d"), "/out/val")
    assert empty.candidates == () and empty.file_name == "data_tfrecord-00000-of-00001.gz"


# ---------------------------------------------------------------------------------------------------
# TFX: component and executor
# ---------------------------------------------------------------------------------------------------

def _exec_properties(component) -> dict:
    """The execution properties as an orchestrator hands them to the executor (protos as JSON text)."""
    from tfx.utils import proto_utils

    return {key: proto_utils.proto_to_json(value) if isinstance(value, message.Message) else value
            for key, value in component.exec_properties.items() if value is not None}


def _input_config(component):
    from tfx.proto import example_gen_pb2
    from tfx.utils import proto_utils

    return proto_utils.json_to_proto(_exec_properties(component)["input_config"], example_gen_pb2.Input())


def test_component_configuration(voc_dir, cityscapes_dir):
    from components.example_gen.component import SegmentationExampleGen
    from components.example_gen.executor import IngestionOptions

    voc = SegmentationExampleGen(input_base=str(voc_dir), dataset_format="voc")
    assert voc.id == "SegmentationExampleGen"
    assert voc.exec_properties["input_base"] == str(voc_dir / "VOCdevkit" / "VOC2012")
    assert [(s.name, s.pattern) for s in _input_config(voc).splits] == [
        ("train", "[IJS]*/*"), ("val", "[IJS]*/*")]
    options = IngestionOptions.from_exec_properties(_exec_properties(voc))
    assert (options.dataset, options.strict, options.skipped_splits) == ("pascal_voc", False, ())
    assert set(options.list_digests) == {"train", "val"}

    cityscapes = SegmentationExampleGen(input_base=str(cityscapes_dir), dataset_format="cityscapes",
                                        splits=["train", "val", "test"], strict=True)
    assert [(s.name, s.pattern) for s in _input_config(cityscapes).splits] == [
        ("train", "*/train/*/*"), ("val", "*/val/*/*")]
    options = IngestionOptions.from_exec_properties(_exec_properties(cityscapes))
    assert options.strict is True and [s.name for s in options.skipped_splits] == ["test"]

    remote = SegmentationExampleGen(input_base="gs://bucket/VOC2012", dataset_format="voc")
    assert remote.exec_properties["input_base"] == "gs://bucket/VOC2012"
    with pytest.raises(IngestionError, match="split list file not found"):
        SegmentationExampleGen(input_base=str(voc_dir), dataset_format="voc", splits=["train", "test"])


def test_split_patterns_fingerprint_images_masks_and_lists(voc_dir, tmp_path):
    from tfx.components.example_gen import utils

    from components.example_gen.component import SegmentationExampleGen

    shutil.copytree(voc_dir, tmp_path / "data")
    root = tmp_path / "data" / "VOCdevkit" / "VOC2012"

    def cache_key() -> tuple[str, str]:
        component = SegmentationExampleGen(input_base=str(tmp_path / "data"), dataset_format="voc")
        splits = _input_config(component).splits
        fingerprint, _, _ = utils.calculate_splits_fingerprint_span_and_version(str(root), splits)
        return fingerprint, _exec_properties(component)["custom_config"]

    before = cache_key()
    mask = root / "SegmentationClass" / f"{_ids('train', root)[0]}.png"
    os.utime(mask, (mask.stat().st_atime, mask.stat().st_mtime + 10))
    after_mask_edit = cache_key()
    assert after_mask_edit[0] != before[0]
    lists = root / "ImageSets" / "Segmentation" / "train.txt"
    lists.write_text("".join(reversed(lists.read_text().splitlines(keepends=True))))
    assert cache_key()[1] != after_mask_edit[1]


def test_executor_writes_splits_report_and_artifact_properties(voc_dir, tmp_path):
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    from components.example_gen.component import SegmentationExampleGen
    from components.example_gen.executor import Executor

    shutil.copytree(voc_dir, tmp_path / "data")
    root = tmp_path / "data" / "VOCdevkit" / "VOC2012"
    bad_id = _ids("val", root)[0]
    (root / "JPEGImages" / f"{bad_id}.jpg").unlink()
    component = SegmentationExampleGen(input_base=str(tmp_path / "data"), dataset_format="voc")
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path / "examples")
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=["--direct_running_mode=in_memory"])
    executor = Executor(context)
    executor.Do({}, {"examples": [artifact]}, _exec_properties(component))

    assert artifact.split_names == '["train", "val"]'
    train = _read_examples(tmp_path / "examples" / "Split-train")
    val = _read_examples(tmp_path / "examples" / "Split-val")
    assert sorted(d.example.example_id for d in train) == sorted(_ids("train", root))
    assert sorted(d.example.example_id for d in val) == sorted(set(_ids("val", root)) - {bad_id})
    report = json.loads((tmp_path / "examples" / "ingestion_report.json").read_text())
    assert report["quarantine"] == [{"split": "val", "id": bad_id, "file": str(root / "JPEGImages" / f"{bad_id}.jpg"),
                                     "reason": "image file not found"}]
    assert sorted(os.listdir(tmp_path / "examples")) == ["Split-train", "Split-val", "ingestion_report.json"]
    report_path = str(tmp_path / "examples" / "ingestion_report.json")
    assert artifact.get_string_custom_property("ingestion_report") == report_path
    assert artifact.get_int_custom_property("ingestion_written") == len(train) + len(val)
    assert artifact.get_int_custom_property("ingestion_quarantined") == 1
    assert json.loads(artifact.get_string_custom_property("ingestion_split_counts"))["val"] == {
        "listed": len(val) + 1, "written": len(val), "quarantined": 1}
    assert artifact.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    assert artifact.get_string_custom_property("file_format") == "tfrecords_gzip"
    assert all(re.fullmatch(r"data_tfrecord-\d{5}-of-\d{5}\.gz", name)
               for name in os.listdir(tmp_path / "examples" / "Split-train"))


def test_a_pipeline_ingestion_refuses_a_split_without_examples(voc_dir, tmp_path):
    from components.example_gen.component import SegmentationExampleGen

    shutil.copytree(voc_dir, tmp_path / "data")
    val = tmp_path / "data" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt"
    val.write_text("")
    # Listed nothing: refused when the component is built (before any step runs)...
    with pytest.raises(IngestionError) as error:
        SegmentationExampleGen(input_base=str(tmp_path / "data"), dataset_format="voc", require_examples=True)
    assert str(error.value) == f"{val}: split 'val' is empty: nothing listed in {val}"
    SegmentationExampleGen(input_base=str(tmp_path / "data"), dataset_format="voc")  # standalone: a warning only
    # ...every listed pair quarantined: refused by the executor once the report is written.
    report = {"splits": {"train": {"source": "t.txt", "listed": 2, "written": 2, "quarantined": 0},
                         "val": {"source": str(val), "listed": 3, "written": 0, "quarantined": 3}}}
    with pytest.raises(IngestionError) as error:
        ingest_module.raise_for_empty_splits(report)
    assert str(error.value) == (f"{val}: split 'val' yields no example (3 listed, 3 quarantined): "
                                "the pipeline stops before training")


def test_links_are_followed_and_reported_overlaps_counted_byte_order_marks_stripped(voc_dir, tmp_path):
    """Symbolic-link policy: followed wherever they lead, each linked file reported with its real path;
    a broken link is quarantined as such. An id in two splits is a warning and a count. A list saved
    with a byte-order mark keeps its first id."""
    shutil.copytree(voc_dir, tmp_path / "data")
    root = tmp_path / "data" / "VOCdevkit" / "VOC2012"
    shared = tmp_path / "shared_storage"
    shutil.move(str(root / "JPEGImages"), shared / "JPEGImages")
    (root / "JPEGImages").symlink_to(shared / "JPEGImages", target_is_directory=True)
    train, val = _ids("train", root), _ids("val", root)
    mask = root / "SegmentationClass" / f"{train[1]}.png"
    shutil.move(str(mask), shared / mask.name)
    mask.symlink_to(shared / mask.name)
    broken = root / "SegmentationClass" / f"{val[0]}.png"
    broken.unlink()
    broken.symlink_to(tmp_path / "gone.png")
    (root / "ImageSets" / "Segmentation" / "train.txt").write_bytes(
        b"\xef\xbb\xbf" + "".join(f"{example_id}\r\n" for example_id in train).encode())
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(val + train[:2]) + "\n")

    report = ingest("voc", str(tmp_path / "data"), str(tmp_path / "out"),
                    beam_pipeline_args=["--direct_running_mode=in_memory"])
    assert report["splits"]["train"]["written"] == len(train)  # the BOM did not eat the first id
    assert report["quarantine"] == [{"split": "val", "id": val[0], "file": str(broken),
                                     "reason": f"mask file is a broken symbolic link (to {tmp_path / 'gone.png'}, "
                                               "which does not exist)"}]
    links = report["symbolic_links"]
    assert (links["policy"], links["dataset_real_root"]) == ("followed", str(root))
    expected = sorted([(str(root / "JPEGImages" / f"{i}.jpg"), str(shared / "JPEGImages" / f"{i}.jpg"))
                       for i in set(train + val)] + [(str(mask), str(shared / mask.name))])
    assert links["linked_files"] == len(expected)
    assert [(link["file"], link["real_path"]) for link in links["examples"]] == expected[:10]
    overlap = sorted(train[:2])
    assert report["overlaps"] == [{"splits": ["train", "val"], "count": 2, "examples": overlap}]
    assert report["totals"]["overlapping_ids"] == 2
    assert (f"2 id(s) listed in both split 'train' and split 'val' ({', '.join(overlap)}): a model trained on one "
            "is scored on examples it has seen") in report["warnings"]


def test_executor_in_strict_mode_stops_and_leaves_a_folder_marked_failed(voc_dir, tmp_path):
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    from components.example_gen.component import SegmentationExampleGen
    from components.example_gen.executor import Executor

    shutil.copytree(voc_dir, tmp_path / "data")
    root = tmp_path / "data" / "VOCdevkit" / "VOC2012"
    bad_id = _ids("val", root)[0]
    image = root / "JPEGImages" / f"{bad_id}.jpg"
    image.write_bytes(image.read_bytes()[:100])  # a truncated JPEG
    component = SegmentationExampleGen(input_base=str(tmp_path / "data"), dataset_format="voc", strict=True)
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path / "examples")
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=["--direct_running_mode=in_memory"])
    with pytest.raises(IngestionError) as error:
        Executor(context).Do({}, {"examples": [artifact]}, _exec_properties(component))
    assert str(error.value).startswith(f"{image}: corrupt or truncated image (")
    assert str(error.value).endswith(f") (split 'val', id '{bad_id}')")
    leftovers = sorted(str(path.relative_to(tmp_path / "examples")) for path in (tmp_path / "examples").rglob("*"))
    assert leftovers == ["INGESTION_FAILED.json", "Split-train", "Split-val"]
    assert json.loads((tmp_path / "examples" / "INGESTION_FAILED.json").read_text())["strict_stop"]["id"] == bad_id


def test_shards_are_named_as_tfx_names_them():
    from tfx.components.example_gen import write_split

    assert ingest_module.TFRECORD_FILE_PREFIX == write_split.DEFAULT_TF_RECORD_FILE_NAME
