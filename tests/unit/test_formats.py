import json

import numpy as np
import pytest

from compress_export.bundle.manifest import verify_bundle, write_manifest
from compress_export.bundle.writer import BundleWriter
from compress_export.calibration.range_table import RangeTable
from compress_export.data.calibration_data import infer_specs, load_npz_data
from compress_export.errors import BundleIntegrityError, UsageError
from compress_export.specs import TensorSpec


def test_range_table_round_trip(tmp_path):
    table = RangeTable("entropy", {"b": (-1.5, 2.0), "a": (0.0, 6.25)}, "abc", "def", {"mask": "huge"})
    table.save(tmp_path / "ranges.json")
    loaded = RangeTable.load(tmp_path / "ranges.json")
    assert loaded == table
    assert loaded.amax("b") == 2.0
    assert list(json.loads((tmp_path / "ranges.json").read_text())["ranges"]) == ["a", "b"]


def test_range_table_rejects_foreign_json(tmp_path):
    (tmp_path / "x.json").write_text('{"ranges": {}}')
    with pytest.raises(UsageError, match="not a compress-export range table"):
        RangeTable.load(tmp_path / "x.json")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("image:1x3x224x224", TensorSpec("image", ("batch", 3, 224, 224), "float32")),
        ("ids:1xseq:int64", TensorSpec("ids", ("batch", "seq"), "int64")),
    ],
)
def test_input_spec_parsing(text, expected):
    assert TensorSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["image", "image:1x3:complex", "image:1x-3", ":1x3"])
def test_bad_input_specs_are_usage_errors(text):
    with pytest.raises(UsageError):
        TensorSpec.parse(text)


SPEC = (TensorSpec("x", ("batch", 4), "float32"),)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_uneven_last_batch_and_varying_files(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _npz(folder / "a.npz", ids=np.zeros((5, 7), np.int32))
    _npz(folder / "b.npz", ids=np.zeros((3, 9), np.int32))
    specs = infer_specs(folder)
    assert specs == (TensorSpec("ids", ("batch", "ids_dim1"), "int64"),)
    data = load_npz_data(folder, specs, batch_size=2)
    shapes = [batch["ids"].shape for batch in data.batches()]
    assert shapes == [(2, 7), (2, 7), (1, 7), (2, 9), (1, 9)]
    assert all(batch["ids"].dtype == np.int64 for batch in data.batches())
    assert len(data) == 8


def test_split_is_seeded_and_disjoint(tmp_path):
    path = _npz(tmp_path / "d.npz", x=np.arange(40, dtype=np.float32).reshape(10, 4))
    data = load_npz_data(path, SPEC, batch_size=4)
    keep, hold = data.split(0.3, seed=5)
    again_keep, again_hold = data.split(0.3, seed=5)
    assert keep == again_keep and hold == again_hold
    assert len(hold) == 3 and len(keep) == 7
    assert not set(keep.shards[0].indices) & set(hold.shards[0].indices)
    assert keep.fingerprint != hold.fingerprint


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"y": np.zeros((2, 4), np.float32), "z": np.zeros((2, 4), np.float32)}, "missing input 'x'"),
        ({"x": np.zeros((2, 4), np.float32), "label": np.array(["a", "b"])}, "class ids"),
        ({"x": np.zeros((2, 4), np.float32), "label": np.array([0.5, 1.0])}, "class ids"),
        ({"x": np.zeros((2, 4), np.float32), "label": np.array([[0.2, 0.8], [1.0, 0.0]])}, "class ids"),
        ({"x": np.zeros((2, 4), np.float32), "label": np.array([-1, 0])}, "negative"),
        ({"x": np.zeros((2, 5), np.float32)}, "expects"),
        ({"x": np.zeros((2, 4, 1), np.float32)}, "rank 2"),
        ({"x": np.zeros((2, 4), np.complex64)}, "complex64"),
        ({"x": np.array([[0, 1, np.nan, 2]], np.float32)}, "NaN or Inf"),
        ({"x": np.array([[0, 1, np.inf, 2]], np.float32)}, "NaN or Inf"),
        ({"x": np.zeros((0, 4), np.float32)}, "no samples"),
        ({"x": np.zeros((2, 4), np.float32), "label": np.zeros(3)}, "disagree"),
    ],
)
def test_bad_data_is_a_clear_usage_error(tmp_path, arrays, message):
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UsageError, match=message):
        load_npz_data(path, SPEC)


def test_not_an_npz_file(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="not a readable .npz"):
        load_npz_data(path, SPEC)


def test_bundle_writer_keeps_previous_bundle_on_failure(tmp_path):
    final = tmp_path / "onnx-int8"
    with BundleWriter(final) as folder:
        (folder / "model.onnx").write_text("v1")
    with pytest.raises(KeyboardInterrupt), BundleWriter(final) as folder:
        (folder / "model.onnx").write_text("half")
        raise KeyboardInterrupt
    assert (final / "model.onnx").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx-int8"]


def test_bundle_writer_replaces_on_success(tmp_path):
    final = tmp_path / "b"
    for version in ("v1", "v2"):
        with BundleWriter(final) as folder:
            (folder / "f.txt").write_text(version)
    assert (final / "f.txt").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def _bundle(folder):
    (folder / "model.onnx").write_bytes(b"weights")
    (folder / "reference").mkdir()
    (folder / "reference" / "inputs.npz").write_bytes(b"inputs")
    (folder / "reference" / "outputs.npz").write_bytes(b"outputs")
    return write_manifest(folder, {"target": "onnx", "artifact": {"path": "model.onnx", "runtime": "onnxruntime"},
                                   "gates": {"min_cosine": 0.99}})


def test_manifest_hashes_and_tamper_detection(tmp_path):
    manifest = _bundle(tmp_path)
    assert set(manifest["files"]) == {"model.onnx", "reference/inputs.npz", "reference/outputs.npz"}
    assert verify_bundle(tmp_path)["target"] == "onnx"
    (tmp_path / "model.onnx").write_bytes(b"weightz")
    with pytest.raises(BundleIntegrityError, match="model.onnx does not match its hash"):
        verify_bundle(tmp_path)
    (tmp_path / "reference" / "inputs.npz").unlink()
    with pytest.raises(BundleIntegrityError, match="missing"):
        verify_bundle(tmp_path)


def _edit_manifest(folder, change):
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: [m], "JSON object"),
    (lambda m: {k: v for k, v in m.items() if k != "files"}, "'files'"),
    (lambda m: {k: v for k, v in m.items() if k != "gates"}, "'gates'"),
    (lambda m: {**m, "artifact": {**m["artifact"], "path": "../../etc/passwd"}}, "not among"),
    (lambda m: {**m, "files": {**m["files"], "../outside.onnx": "0" * 64}}, "outside the bundle"),
    (lambda m: {**m, "files": {**m["files"], "/etc/passwd": "0" * 64}}, "outside the bundle"),
    (lambda m: {**m, "files": {k: v for k, v in m["files"].items() if k != "reference/outputs.npz"}},
     "reference/outputs.npz"),
    (lambda m: {**m, "files": {**m["files"], "model.onnx": "not-a-hash"}}, "sha256"),
    (lambda m: {**m, "gates": {"min_cosine": "0.99"}}, "finite number"),
    (lambda m: {**m, "schema": "other"}, "schema"),
])
def test_malformed_manifests_are_refused_naming_the_problem(tmp_path, change, message):
    _bundle(tmp_path)
    _edit_manifest(tmp_path, change)
    with pytest.raises(BundleIntegrityError, match=message):
        verify_bundle(tmp_path)


def test_a_file_the_manifest_does_not_list_is_refused(tmp_path):
    _bundle(tmp_path)
    (tmp_path / "reference" / "extra.npz").write_bytes(b"planted")
    with pytest.raises(BundleIntegrityError, match="reference/extra.npz is not listed"):
        verify_bundle(tmp_path)


def test_a_replaced_file_dropped_from_the_list_is_refused(tmp_path):
    _bundle(tmp_path)
    (tmp_path / "reference" / "outputs.npz").write_bytes(b"forged")
    _edit_manifest(tmp_path, lambda m: {**m, "files": {k: v for k, v in m["files"].items()
                                                         if k != "reference/outputs.npz"}})
    with pytest.raises(BundleIntegrityError):
        verify_bundle(tmp_path)


def test_a_single_input_model_takes_one_array_under_any_key_and_npy_files(tmp_path):
    specs = (TensorSpec("x", ("batch", 4)),)
    np.savez(tmp_path / "d.npz", features=np.ones((3, 4), np.float32), label=np.array([0, 1, 1]))
    data = load_npz_data(tmp_path / "d.npz", specs)
    batch = next(data.batches(labels=True))
    assert batch["x"].shape == (3, 4) and batch["label"].tolist() == [0, 1, 1]
    assert data.describe()["renamed"] == ["features -> x"]
    np.save(tmp_path / "d.npy", np.ones((5, 4), np.float32))
    assert len(load_npz_data(tmp_path / "d.npy", specs)) == 5
    with pytest.raises(UsageError, match="a .npy file holds one array"):
        load_npz_data(tmp_path / "d.npy", specs + (TensorSpec("y", ("batch", 4)),))


def test_one_hot_labels_are_read_as_class_ids(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((3, 4), np.float32), label=np.eye(3)[[2, 0, 1]])
    data = load_npz_data(tmp_path / "d.npz", (TensorSpec("x", ("batch", 4)),))
    assert next(data.batches(labels=True))["label"].tolist() == [2, 0, 1]
    assert "one-hot" in data.describe()["labels"]


def test_crafted_npz_headers_are_refused_before_allocation(tmp_path):
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**40, 64)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(UsageError, match="corrupt or crafted"):
        load_npz_data(tmp_path / "bomb.npz", (TensorSpec("x", ("batch", 64)),))


def test_random_data_refuses_sizes_it_cannot_hold(tmp_path):
    from compress_export.data.calibration_data import random_data

    with pytest.raises(UsageError, match="GiB"):
        random_data((TensorSpec("x", ("batch", 100_000, 100_000)),), 64, 16, 0, tmp_path)


def test_malformed_range_tables_and_caches_are_refused(tmp_path):
    from compress_export.calibration.range_table import SCHEMA, RangeTable

    for ranges, message in (([1, 2], "objects"), ({"t": 3.0}, r"\[lo, hi\]"), ({"t": [0, "inf"]}, "finite"),
                            ({"t": [2.0, 1.0]}, "lo <= hi"), ({"t": [True, 1.0]}, r"\[lo, hi\]")):
        (tmp_path / "r.json").write_text(json.dumps({"schema": SCHEMA, "method": "m", "ranges": ranges}))
        with pytest.raises(UsageError, match=message):
            RangeTable.load(tmp_path / "r.json")
    (tmp_path / "r.json").write_text("[]")
    with pytest.raises(UsageError, match="not a compress-export range table"):
        RangeTable.load(tmp_path / "r.json")
    for scale in ("7fc00000", "bf800000", "7f800000"):  # NaN, -1, inf
        with pytest.raises(UsageError, match="finite number"):
            RangeTable.from_trt_cache(f"TRT-100300-EntropyCalibration2\nt: {scale}\n")
