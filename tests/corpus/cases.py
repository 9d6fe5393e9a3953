"""The corpus: bad inputs a careless or hostile user gives the CLI, each with the exit code and the words
its one-line error must carry. A case builds its own files in its folder and returns the CLI arguments.
Positive controls (exit 0/1) sit beside them, so a case that fails for the wrong reason shows."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .assets import mlp_data


@dataclass(frozen=True)
class Context:
    assets: dict[str, Path]
    bundles: dict[str, Path]  # prebuilt good bundles by target
    folder: Path  # this case's own folder
    marker: Path  # a file a code payload would create

    @property
    def out(self) -> Path:
        return self.folder / "out"


@dataclass(frozen=True)
class Case:
    name: str
    code: int
    fragment: str | None
    make: Callable[[Context], list]


CASES: list[Case] = []


def case(name: str, code: int, fragment: str | None = None):
    def register(make: Callable[[Context], list]) -> Callable[[Context], list]:
        CASES.append(Case(name, code, fragment, make))
        return make

    return register


def export(c: Context, model, *extra, calib=None, val=None, to: str = "onnx") -> list:
    args = [model, "--to", to, "--out", c.out, "--no-bench", "-q"]
    if calib is not False:
        args += ["--calib-data", calib or c.assets["mlp_calib"]]
    if val is not False:
        args += ["--val-data", val or c.assets["mlp_val"]]
    return args + list(extra)


def noise(size: int) -> bytes:
    """Bytes that look random, the same every run."""
    return np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()


def write(c: Context, name: str, content: bytes | str) -> Path:
    path = c.folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def npz(c: Context, name: str, **arrays) -> Path:
    path = c.folder / name
    np.savez(path, **arrays)
    return path


class Payload:
    """Unpickling it creates the marker file: the trace that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --- the model argument -------------------------------------------------------------------------------

@case("model-missing-file", 2, "no such file")
def _(c):
    return export(c, c.folder / "nothere.onnx")


@case("model-truncated-onnx", 2, "corrupt or truncated")
def _(c):
    data = c.assets["mlp"].read_bytes()
    return export(c, write(c, "t.onnx", data[: len(data) // 2]))


@case("model-flipped-byte-in-a-tensor-name", 2, "invalid ONNX model")
def _(c):
    data = bytearray(c.assets["mlp"].read_bytes())
    data[data.index(b"logits")] ^= 0xFF  # one flipped byte: the output's name is no longer UTF-8
    return export(c, write(c, "m.onnx", bytes(data)))


@case("model-flipped-byte-in-a-node-name", 0, None)
def _(c):
    data = bytearray(c.assets["mlp"].read_bytes())
    data[data.index(b"relu")] ^= 0xFF  # a node's name is only a label: the model still runs
    return export(c, write(c, "m.onnx", bytes(data)))


@case("model-flipped-byte-in-a-name-calibrate", 2, "invalid ONNX model")
def _(c):
    data = bytearray(c.assets["mlp"].read_bytes())
    data[data.index(b"w1")] ^= 0xFF
    return ["calibrate", write(c, "m.onnx", bytes(data)), "--calib-data", c.assets["mlp_calib"], "--out",
            c.folder / "r.json", "-q"]


@case("model-output-rows-unlike-labels", 2, "rows for")
def _(c):
    return export(c, c.assets["rows_folded"])


@case("model-random-bytes", 2, "corrupt or truncated")
def _(c):
    return export(c, write(c, "r.onnx", noise(4096)))


@case("model-empty-file", 2, "no graph")
def _(c):
    return export(c, write(c, "e.onnx", b""))


@case("model-undefined-tensor", 2, "invalid ONNX model")
def _(c):
    return export(c, c.assets["undefined_input"])


@case("model-custom-domain-op", 4, "onnxruntime cannot load")
def _(c):
    return export(c, c.assets["custom_op"])


@case("model-opset-30", 4, "onnxruntime cannot load")
def _(c):
    return export(c, c.assets["future_opset"])


@case("model-no-inputs", 2, "declares no inputs")
def _(c):
    return export(c, c.assets["no_inputs"])


@case("model-is-a-folder", 2, None)
def _(c):
    (c.folder / "dir.onnx").mkdir()
    return export(c, c.folder / "dir.onnx")


@case("model-text-file", 2, "not a readable ONNX model")
def _(c):
    return export(c, write(c, "model.txt", "hello"))


@case("model-external-data-missing", 2, "which is missing")
def _(c):
    import onnx

    path = c.folder / "ext.onnx"
    model = onnx.load(str(c.assets["mlp"]))
    for init in model.graph.initializer:
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        init.external_data.add(key="location", value="gone.bin")
        init.external_data.add(key="length", value=str(len(init.raw_data) or 128))
        init.ClearField("raw_data")
    onnx.save_model(model, str(path))
    return export(c, path)


@case("model-external-data-escapes", 2, None)
def _(c):
    import onnx

    path = c.folder / "escape.onnx"
    model = onnx.load(str(c.assets["mlp"]))
    for init in model.graph.initializer:
        init.data_location = onnx.TensorProto.EXTERNAL
        init.external_data.add(key="location", value="../../../../etc/passwd")
        init.ClearField("raw_data")
    onnx.save_model(model, str(path))
    return export(c, path)


@case("pickle-whole-module", 2, "pickle")
def _(c):
    import torch

    path = c.folder / "m.pt"
    torch.save(torch.nn.Linear(4, 3), path)
    return export(c, path)


@case("pickle-payload-pt", 2, "pickle")
def _(c):
    return export(c, write(c, "evil.pt", pickle.dumps(Payload(c.marker))))


@case("pickle-payload-pkl", 2, None)
def _(c):
    return export(c, write(c, "evil.pkl", pickle.dumps(Payload(c.marker))))


@case("pickle-state-dict", 2, "state_dict")
def _(c):
    import torch

    path = c.folder / "state.pt"
    torch.save(torch.nn.Linear(4, 3).state_dict(), path)
    return export(c, path)


@case("pickle-random-bytes", 2, "not readable as PyTorch tensors")
def _(c):
    return export(c, write(c, "r.pt", noise(512)))


def _crafted_pt2(kind: str):
    def make(c):
        from tests.hostile_pt2 import crafted_archives

        return export(c, crafted_archives(c.folder, c.marker)[kind])

    return make


for _kind in ("sample_inputs", "pickled_weight", "opaque_constant"):
    CASES.append(Case(f"pt2-crafted-{_kind.replace('_', '-')}", 2, "--trust-pickle", _crafted_pt2(_kind)))


@case("pt2-not-a-zip", 2, "not a torch.export .pt2 archive")
def _(c):
    return export(c, write(c, "r.pt2", noise(1024)))


@case("pt2-empty-zip", 2, "not a readable torch.export program")
def _(c):
    path = c.folder / "empty.pt2"
    zipfile.ZipFile(path, "w").close()
    return export(c, path)


@case("pt2-compiled-library", 2, "--trust-pickle")
def _(c):
    from tests.hostile_pt2 import _base_archive

    base = _base_archive(c.folder)
    root = zipfile.ZipFile(base).namelist()[0].split("/")[0]
    shutil.copy(base, c.folder / "aoti.pt2")
    with zipfile.ZipFile(c.folder / "aoti.pt2", "a") as archive:
        archive.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF")
    return export(c, c.folder / "aoti.pt2")


@case("factory-file-missing", 2, None)
def _(c):
    return export(c, f"{c.folder / 'nothere.py'}:factory", "--input", "x:1x4")


def _factory(c: Context, source: str) -> str:
    return f"{write(c, 'f.py', source)}:factory"


@case("factory-function-missing", 2, None)
def _(c):
    return export(c, _factory(c, "def other():\n    pass\n"), "--input", "x:1x4")


@case("factory-raises", 4, "the factory raised")
def _(c):
    return export(c, _factory(c, "def factory():\n    raise RuntimeError('boom')\n"), "--input", "x:1x4")


@case("factory-returns-no-module", 2, None)
def _(c):
    return export(c, _factory(c, "def factory():\n    return 42\n"), "--input", "x:1x4")


@case("factory-module-missing", 2, None)
def _(c):
    return export(c, "no_such_package.models:factory", "--input", "x:1x4")


LINEAR_FACTORY = "import torch\n\n\ndef factory():\n    torch.manual_seed(0)\n    return torch.nn.Linear(4, 3)\n"


@case("weights-missing-file", 2, None)
def _(c):
    return export(c, _factory(c, LINEAR_FACTORY), "--weights", c.folder / "nothere.safetensors")


@case("weights-random-bytes", 2, None)
def _(c):
    return export(c, _factory(c, LINEAR_FACTORY), "--weights",
                  write(c, "w.safetensors", noise(256)))


@case("weights-pickle-payload", 2, None)
def _(c):
    return export(c, _factory(c, LINEAR_FACTORY), "--weights",
                  write(c, "w.pt", pickle.dumps(Payload(c.marker))))


@case("weights-wrong-keys", 2, None)
def _(c):
    import torch

    torch.save({"other.weight": torch.zeros(3, 4)}, c.folder / "w.pt")
    return export(c, _factory(c, LINEAR_FACTORY), "--weights", c.folder / "w.pt")


@case("keras-random-bytes", 2, None)
def _(c):
    return export(c, write(c, "m.keras", noise(512)))


@case("keras-h5-random-bytes", 2, None)
def _(c):
    return export(c, write(c, "m.h5", noise(512)))


# --- data ---------------------------------------------------------------------------------------------

GOOD = mlp_data()
DATA_CASES = [
    ("data-random-bytes", 2, "not a readable .npz", lambda c: write(c, "d.npz", noise(300))),
    ("data-empty-npz", 2, "missing input", lambda c: npz(c, "d.npz")),
    ("data-two-wrong-keys", 2, "missing input 'x'", lambda c: npz(c, "d.npz", a=GOOD["x"], b=GOOD["x"])),
    ("data-wrong-rank", 2, "rank 2", lambda c: npz(c, "d.npz", x=GOOD["x"][:, :, None])),
    ("data-wrong-width", 2, "the model expects", lambda c: npz(c, "d.npz", x=GOOD["x"][:, :3])),
    ("data-complex", 2, "complex64", lambda c: npz(c, "d.npz", x=GOOD["x"].astype(np.complex64))),
    ("data-strings", 2, "<U", lambda c: npz(c, "d.npz", x=np.full((4, 4), "a"))),
    ("data-int-for-float", 2, "the model expects float32", lambda c: npz(c, "d.npz", x=np.ones((8, 4), np.int64))),
    ("data-nan", 2, "NaN or Inf", lambda c: npz(c, "d.npz", x=np.where(GOOD["x"] > 1, np.nan, GOOD["x"]))),
    ("data-inf", 2, "NaN or Inf", lambda c: npz(c, "d.npz", x=np.where(GOOD["x"] > 1, np.inf, GOOD["x"]))),
    ("data-zero-samples", 2, "no samples", lambda c: npz(c, "d.npz", x=np.zeros((0, 4), np.float32))),
    ("data-label-count", 2, "disagree", lambda c: npz(c, "d.npz", x=GOOD["x"], label=GOOD["label"][:5])),
    ("data-label-strings", 2, "class ids", lambda c: npz(c, "d.npz", x=GOOD["x"], label=GOOD["label"].astype(str))),
    ("data-label-fractions", 2, "class ids", lambda c: npz(c, "d.npz", x=GOOD["x"], label=GOOD["label"] + 0.5)),
    ("data-label-negative", 2, "negative", lambda c: npz(c, "d.npz", x=GOOD["x"], label=GOOD["label"] - 5)),
    ("data-label-soft-2d", 2, "class ids", lambda c: npz(c, "d.npz", x=GOOD["x"],
                                                         label=np.full((len(GOOD["x"]), 3), 1 / 3))),
    ("data-label-3d", 2, "class ids", lambda c: npz(c, "d.npz", x=GOOD["x"], label=np.zeros((24, 3, 1)))),
    ("data-object-array", 2, "Python objects", lambda c: _object_npz(c)),
    ("data-header-bomb", 2, "corrupt or crafted", lambda c: _bomb_npz(c)),
    ("data-empty-folder", 2, "no .npz or .npy", lambda c: _empty_folder(c)),
    ("data-npy-not-array", 2, "not a readable .npy", lambda c: write(c, "d.npy", b"\x93NUMPY garbage")),
    ("data-truncated-npz", 2, "not a readable .npz", lambda c: _truncated(c)),
]


def _object_npz(c):
    path = c.folder / "d.npz"
    np.savez(path, x=np.array([Payload(c.marker)] * 24, dtype=object), allow_pickle=True)
    return path


def _bomb_npz(c):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**40, 4)})
    path = c.folder / "d.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
    return path


def _empty_folder(c):
    (c.folder / "data").mkdir()
    return c.folder / "data"


def _truncated(c):
    data = c.assets["mlp_calib"].read_bytes()
    return write(c, "d.npz", data[: len(data) // 2])


def _data_case(make_file, where: str):
    def make(c):
        path = make_file(c)
        return export(c, c.assets["mlp"], **{where: path}) if where == "calib" else export(c, c.assets["mlp"], val=path)

    return make


for _name, _code, _fragment, _file in DATA_CASES:
    CASES.append(Case(f"{_name}", _code, _fragment, _data_case(_file, "calib")))
for _name, _code, _fragment, _file in DATA_CASES[:8]:
    CASES.append(Case(f"val-{_name}", _code, _fragment, _data_case(_file, "val")))


@case("val-data-label-out-of-range", 2, "classes")
def _(c):
    return export(c, c.assets["mlp"], val=npz(c, "d.npz", x=GOOD["x"], label=GOOD["label"] + 7))


@case("data-npy-for-single-input", 0, None)
def _(c):
    np.save(c.folder / "d.npy", GOOD["x"])
    return export(c, c.assets["mlp"], calib=c.folder / "d.npy")


@case("data-npy-for-two-inputs", 2, "a .npy file holds one array")
def _(c):
    np.save(c.folder / "d.npy", GOOD["x"])
    return export(c, c.assets["two_inputs"], calib=c.folder / "d.npy", val=False)


@case("data-inputs-disagree-on-samples", 2, "disagree")
def _(c):
    return export(c, c.assets["two_inputs"], calib=npz(c, "d.npz", a=GOOD["x"], b=GOOD["x"][:5]), val=False)


@case("data-token-ids-out-of-range", 2, "does not fit")
def _(c):
    return export(c, c.assets["tokens"], calib=npz(c, "d.npz", ids=np.full((8, 6), 50, np.int64)), val=False)


@case("data-float-for-token-ids", 2, "the model expects int64")
def _(c):
    return export(c, c.assets["tokens"], calib=npz(c, "d.npz", ids=np.ones((8, 6), np.float32)), val=False)


@case("data-reshape-fails-at-run-time", 4, "onnxruntime failed running")
def _(c):
    return export(c, c.assets["fixed_reshape"], calib=npz(c, "d.npz", x=GOOD["x"]), val=False)


@case("data-too-few-to-hold-out", 2, "too few")
def _(c):
    return export(c, c.assets["mlp"], "--holdout", "0.05", calib=npz(c, "d.npz", x=GOOD["x"][:3]), val=False)


@case("data-one-sample", 2, "at least 2 samples")
def _(c):
    return export(c, c.assets["mlp"], calib=npz(c, "d.npz", x=GOOD["x"][:1]), val=False)


@case("data-none-given", 2, "no calibration data")
def _(c):
    return export(c, c.assets["mlp"], calib=False, val=False)


@case("data-random-huge-dims", 2, "GiB")
def _(c):
    return export(c, c.assets["huge"], "--random-data", calib=False, val=False)


@case("data-random-symbolic-dims", 2, "fixed dims")
def _(c):
    return export(c, c.assets["symbolic"], "--random-data", calib=False, val=False)


@case("data-train-data-bad", 2, None)
def _(c):
    return export(c, c.assets["mlp"], "--qat", "--train-data", write(c, "t.npz", noise(100)), to="onnx-int8")


# --- options ------------------------------------------------------------------------------------------

OPTION_CASES = [
    ("--percentile", "nan"), ("--percentile", "101"), ("--percentile", "50"), ("--min-cosine", "nan"),
    ("--min-cosine", "inf"), ("--max-accuracy-drop", "nan"), ("--max-accuracy-drop", "-inf"), ("--seed", "-1"),
    ("--seed", "x"), ("--holdout", "nan"), ("--holdout", "0.99"), ("--calib-batch", "0"), ("--calib-samples", "0"),
    ("--bench-seconds", "nan"), ("--bench-runs", "0"), ("--calibrator", "bogus"), ("--num-bins", "3"),
    ("--lr", "nan"), ("--lr", "0"), ("--alpha", "2"), ("--tflite-io", "int4"), ("--task", "bogus"),
    ("--trt-max-batch", "0"), ("--trt-cache-algorithm", "Bogus"), ("--no-such-option", "1"),
    ("--max-accuracy-drop", "-5"), ("--max-accuracy-drop", "101"), ("--min-cosine", "1.5"), ("--min-cosine", "-2"),
    ("--min-decision-agreement", "1.01"), ("--min-detection-f1", "-0.1"), ("--max-perplexity-increase", "-1"),
    ("--min-bleu", "101"), ("--max-fid", "-1"), ("--min-psnr", "-1"), ("--min-ssim", "1.5"),
]
for _flag, _value in OPTION_CASES:
    CASES.append(Case(f"option{_flag}={_value}", 2, None,
                      lambda c, f=_flag, v=_value: export(c, c.assets["mlp"], f, v)))


@case("option-to-unknown-target", 2, "unknown target")
def _(c):
    return export(c, c.assets["mlp"], to="onnx-int3")


@case("option-to-empty", 2, "at least one target")
def _(c):
    return export(c, c.assets["mlp"], to=" , ")


@case("option-bench-batch-text", 2, "--bench-batch")
def _(c):
    return [c.assets["mlp"], "--to", "onnx", "--calib-data", c.assets["mlp_calib"], "--out", c.out, "-q",
            "--bench-batch", "one"]


@case("option-bench-batch-zero", 2, "positive")
def _(c):
    return [c.assets["mlp"], "--to", "onnx", "--calib-data", c.assets["mlp_calib"], "--out", c.out, "-q",
            "--bench-batch", "0"]


@case("option-bad-regex", 2, "regular expression")
def _(c):
    return export(c, c.assets["mlp"], "--exclude-nodes", "(", to="onnx-int8")


@case("option-include-ops-match-nothing", 2, "--include-ops")
def _(c):
    return export(c, c.assets["mlp"], "--include-ops", "Bogus", to="onnx-int8")


@case("option-exclude-everything", 2, "--include-ops")
def _(c):
    return export(c, c.assets["mlp"], "--exclude-ops", "MatMul,Relu", to="onnx-int8")


@case("option-exclude-everything-trt", 2, "--include-ops")
def _(c):
    return export(c, c.assets["mlp"], "--exclude-ops", "MatMul,Relu,Add", to="trt-int8")


@case("option-input-bad-dims", 2, "bad dimension")
def _(c):
    return export(c, _factory(c, LINEAR_FACTORY), "--input", "x:1x4.5")


@case("option-input-bad-dtype", 2, "unknown dtype")
def _(c):
    return export(c, _factory(c, LINEAR_FACTORY), "--input", "x:1x4:float128")


@case("option-input-bad-form", 2, "expected name")
def _(c):
    return export(c, _factory(c, LINEAR_FACTORY), "--input", "x")


@case("option-qat-on-onnx-model", 2, "--qat changes a PyTorch nn.Module or a Keras model")
def _(c):
    return export(c, c.assets["mlp"], "--qat", to="onnx-int8")


@case("option-out-is-a-file", 2, "is a file")
def _(c):
    target = write(c, "file", "x")
    return [c.assets["mlp"], "--to", "onnx", "--calib-data", c.assets["mlp_calib"], "--out", target, "-q"]


@case("option-out-under-a-file", 2, "not writable")
def _(c):
    return [c.assets["mlp"], "--to", "onnx", "--calib-data", c.assets["mlp_calib"], "--out", "/dev/null/out", "-q"]


# --- ranges and caches --------------------------------------------------------------------------------

RANGES_SCHEMA = "compress-export/ranges@1"
RANGE_CASES = [
    ("ranges-a-list", "[1, 2]", "not a compress-export range table"),
    ("ranges-not-json", "{", "cannot read range table"),
    ("ranges-wrong-schema", json.dumps({"schema": "x", "ranges": {}}), "not a compress-export range table"),
    ("ranges-ranges-a-list", json.dumps({"schema": RANGES_SCHEMA, "ranges": [[0, 1]]}), "objects"),
    ("ranges-three-numbers", json.dumps({"schema": RANGES_SCHEMA, "ranges": {"x": [0, 1, 2]}}), "[lo, hi]"),
    ("ranges-infinite", json.dumps({"schema": RANGES_SCHEMA, "ranges": {"x": [0, 1e999]}}), "finite"),
    ("ranges-empty-interval", json.dumps({"schema": RANGES_SCHEMA, "ranges": {"x": [2, 1]}}), "lo <= hi"),
    ("ranges-strings", json.dumps({"schema": RANGES_SCHEMA, "ranges": {"x": ["a", "b"]}}), "two numbers"),
    ("ranges-other-model", json.dumps({"schema": RANGES_SCHEMA, "method": "minmax", "ranges": {"q": [0, 1]}}),
     "another model"),
]
for _name, _text, _fragment in RANGE_CASES:
    CASES.append(Case(_name, 2, _fragment, lambda c, t=_text: export(c, c.assets["mlp"], "--ranges",
                                                                     write(c, "r.json", t), to="onnx-int8")))

CACHE_CASES = [
    ("cache-nan-scale", "TRT-100300-EntropyCalibration2\nx: 7fc00000\n", "finite number"),
    ("cache-negative-scale", "TRT-100300-EntropyCalibration2\nx: bf800000\n", "finite number"),
    ("cache-infinite-scale", "TRT-100300-EntropyCalibration2\nx: 7f800000\n", "finite number"),
    ("cache-bad-header", "hello\nx: 3c010204\n", "not a TensorRT calibration cache"),
    ("cache-bad-line", "TRT-100300-EntropyCalibration2\nx 3c010204\n", "tensor_name: hex"),
    ("cache-empty", "", "not a TensorRT calibration cache"),
    ("cache-binary", "\x00\xff\xfe", "not a TensorRT calibration cache"),
]
for _name, _text, _fragment in CACHE_CASES:
    CASES.append(Case(_name, 2, _fragment, lambda c, t=_text: export(c, c.assets["mlp"], "--ranges-from-cache",
                                                                     write(c, "c.cache", t), to="trt-int8")))


@case("ranges-and-cache-together", 2, "not both")
def _(c):
    cache = write(c, "c.cache", "TRT-100300-EntropyCalibration2\n")
    table = write(c, "r.json", json.dumps({"schema": RANGES_SCHEMA, "ranges": {}}))
    return export(c, c.assets["mlp"], "--ranges", table, "--ranges-from-cache", cache, to="onnx-int8")


# --- validate ------------------------------------------------------------------------------------------

def _bundle(c: Context, target: str = "onnx") -> Path:
    copy = c.folder / target
    shutil.copytree(c.bundles[target], copy)
    return copy


def _edit_manifest(bundle: Path, change) -> Path:
    path = bundle / "manifest.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return bundle


def _validate(bundle, *extra) -> list:
    return ["validate", bundle, "--no-bench", "-q", *extra]


VALIDATE_CASES = [
    ("validate-manifest-a-list", lambda m: [m], "JSON object"),
    ("validate-no-files", lambda m: {k: v for k, v in m.items() if k != "files"}, "'files'"),
    ("validate-no-gates", lambda m: {k: v for k, v in m.items() if k != "gates"}, "'gates'"),
    ("validate-no-target", lambda m: {k: v for k, v in m.items() if k != "target"}, "'target'"),
    ("validate-artifact-outside", lambda m: {**m, "artifact": {**m["artifact"], "path": "../../x.onnx"}},
     "not among"),
    ("validate-file-outside", lambda m: {**m, "files": {**m["files"], "../../etc/passwd": "0" * 64}},
     "outside the bundle"),
    ("validate-absolute-file", lambda m: {**m, "files": {**m["files"], "/etc/passwd": "0" * 64}}, "outside"),
    ("validate-unknown-schema", lambda m: {**m, "schema": "other/bundle@9"}, "unknown bundle schema"),
    ("validate-unknown-target", lambda m: {**m, "target": "onnx-int3"}, "unknown target"),
    ("validate-unknown-runtime", lambda m: {**m, "artifact": {**m["artifact"], "runtime": "magic"}},
     "no runner for runtime"),
    ("validate-gate-a-string", lambda m: {**m, "gates": {"min_cosine": "high"}}, "finite number"),
    ("validate-bad-hash", lambda m: {**m, "files": {**m["files"], "model.onnx": "xyz"}}, "sha256"),
    ("validate-reference-unlisted", lambda m: {**m, "files": {k: v for k, v in m["files"].items()
                                                               if not k.startswith("reference/")}}, "not listed"),
]
for _name, _change, _fragment in VALIDATE_CASES:
    CASES.append(Case(_name, 2, _fragment, lambda c, ch=_change: _validate(_edit_manifest(_bundle(c), ch))))


@case("validate-missing-folder", 2, "not a bundle folder")
def _(c):
    return _validate(c.folder / "nothere")


@case("validate-no-manifest", 2, "no readable manifest.json")
def _(c):
    bundle = _bundle(c)
    (bundle / "manifest.json").unlink()
    return _validate(bundle)


@case("validate-manifest-not-json", 2, "no readable manifest.json")
def _(c):
    bundle = _bundle(c)
    (bundle / "manifest.json").write_text("{not json")
    return _validate(bundle)


@case("validate-tampered-model", 2, "does not match its hash")
def _(c):
    bundle = _bundle(c)
    with open(bundle / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    return _validate(bundle)


@case("validate-replaced-outputs-dropped-from-list", 2, "reference/outputs.npz")
def _(c):
    bundle = _bundle(c)
    np.savez(bundle / "reference" / "outputs.npz", logits=np.zeros((16, 3), np.float32))
    return _validate(_edit_manifest(bundle, lambda m: {**m, "files": {k: v for k, v in m["files"].items()
                                                                       if k != "reference/outputs.npz"}}))


@case("validate-unlisted-file", 2, "is not listed")
def _(c):
    bundle = _bundle(c)
    (bundle / "reference" / "extra.npz").write_bytes(b"planted")
    return _validate(bundle)


@case("validate-missing-file", 2, "is missing")
def _(c):
    bundle = _bundle(c)
    (bundle / "report.md").unlink()
    return _validate(bundle)


@case("validate-symlinked-file", 2, None)
def _(c):
    bundle = _bundle(c)
    (bundle / "report.md").unlink()
    (bundle / "report.md").symlink_to("/etc/hostname")
    return _validate(bundle)


@case("validate-report-into-missing-folder", 2, "does not exist")
def _(c):
    return _validate(_bundle(c), "--report", c.folder / "nowhere" / "r.json")


def _rehash(bundle: Path, name: str) -> Path:
    """The manifest made to vouch for a replaced file: a bundle whose hashes all check, with hostile content."""
    from compress_export.util.hashing import sha256_file

    return _edit_manifest(bundle, lambda m: {**m, "files": {**m["files"], name: sha256_file(bundle / name)}})


@case("validate-garbage-artifact-rehashed", 2, "model.onnx")
def _(c):
    bundle = _bundle(c)
    (bundle / "model.onnx").write_bytes(noise(4096))
    return _validate(_rehash(bundle, "model.onnx"))


@case("validate-garbage-trt-artifact-rehashed", 2, "model.onnx")
def _(c):
    bundle = _bundle(c, "trt-int8")
    (bundle / "model.onnx").write_bytes(noise(4096))
    return _validate(_rehash(bundle, "model.onnx"))


@case("validate-pickled-reference-rehashed", 2, "reference/inputs.npz")
def _(c):
    bundle = _bundle(c)
    np.savez(bundle / "reference" / "inputs.npz", x=np.array([Payload(c.marker)], dtype=object))
    return _validate(_rehash(bundle, "reference/inputs.npz"))


@case("validate-reference-wrong-names-rehashed", 2, "reference/outputs.npz")
def _(c):
    bundle = _bundle(c)
    np.savez(bundle / "reference" / "outputs.npz", something_else=np.zeros((16, 3), np.float32))
    return _validate(_rehash(bundle, "reference/outputs.npz"))


@case("validate-reference-wrong-shape-rehashed", 2, "reference/inputs.npz")
def _(c):
    bundle = _bundle(c)
    np.savez(bundle / "reference" / "inputs.npz", x=np.zeros((16, 7), np.float32))
    return _validate(_rehash(bundle, "reference/inputs.npz"))


@case("validate-negative-gate", 2, None)
def _(c):
    return _validate(_bundle(c), "--max-accuracy-drop", "-5")


@case("validate-out-of-range-gate-in-manifest", 2, "min_cosine")
def _(c):
    return _validate(_edit_manifest(_bundle(c), lambda m: {**m, "gates": {**m["gates"], "min_cosine": 7}}))


@case("validate-min-cosine-nan", 2, None)
def _(c):
    return _validate(_bundle(c), "--min-cosine", "nan")


@case("validate-good-bundle", 0, None)
def _(c):
    return _validate(_bundle(c))


@case("validate-stricter-gate-fails", 1, None)
def _(c):
    return _validate(_bundle(c, "trt-int8"), "--min-cosine", "1")


@case("validate-trt-require-engine", 3, "--require-engine")
def _(c):
    return _validate(_bundle(c, "trt-int8"), "--require-engine")


# --- calibrate, lint, build-engine --------------------------------------------------------------------

@case("calibrate-out-in-missing-folder", 2, "does not exist")
def _(c):
    return ["calibrate", c.assets["mlp"], "--calib-data", c.assets["mlp_calib"], "--out",
            c.folder / "nowhere" / "r.json", "-q"]


@case("calibrate-bad-model", 2, "corrupt or truncated")
def _(c):
    return ["calibrate", write(c, "m.onnx", noise(100)), "--calib-data", c.assets["mlp_calib"], "--out",
            c.folder / "r.json", "-q"]


@case("calibrate-good", 0, None)
def _(c):
    return ["calibrate", c.assets["mlp"], "--calib-data", c.assets["mlp_calib"], "--out", c.folder / "r.json", "-q"]


@case("lint-missing-file", 2, "no such file")
def _(c):
    return ["lint", c.folder / "nothere.onnx"]


@case("lint-corrupt-file", 2, "corrupt or truncated")
def _(c):
    return ["lint", write(c, "m.onnx", noise(100))]


@case("build-engine-on-onnx-bundle", 2, "takes trt-int8 bundles")
def _(c):
    return ["build-engine", _bundle(c)]


@case("build-engine-without-tensorrt", 3, "tensorrt not installed")
def _(c):
    return ["build-engine", _bundle(c, "trt-int8")]


# --- positive controls ---------------------------------------------------------------------------------

@case("export-good-onnx-int8", 0, None)
def _(c):
    return export(c, c.assets["mlp"], to="onnx,onnx-int8,trt-int8")


@case("export-one-hot-labels", 0, None)
def _(c):
    return export(c, c.assets["mlp"], calib=npz(c, "d.npz", x=GOOD["x"], label=np.eye(3)[GOOD["label"]]), val=False)


@case("export-gate-fails", 1, None)
def _(c):
    return export(c, c.assets["mlp"], "--min-cosine", "1", "--no-fallback", to="onnx-int8")
