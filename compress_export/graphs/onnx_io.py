"""Reading and writing ONNX models of any size. Protobuf cannot serialize 2 GB, so large models keep their
weights in one external data file beside the graph (`model.onnx.data`), and in-memory sessions of a
large model go through a temporary folder."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import onnx

PROTOBUF_LIMIT = 2**31 - 1
# Models larger than this are written with external data. Below the protobuf limit, with room for the
# graph itself; tests lower it to exercise the external-data path on small models.
EXTERNAL_DATA_BYTES = 1 << 30


def data_file(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".data")


def save(model: onnx.ModelProto, path: Path) -> None:
    """Write `model` to `path`, its weights to `path.data` when it is large. onnx moves the weights out of
    the in-memory model as it writes them there: save a model once, or load it again."""
    path = Path(path)
    data = data_file(path)
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    if model.ByteSize() > EXTERNAL_DATA_BYTES:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
    else:
        onnx.save_model(model, str(path))


def set_metadata(target, props: dict[str, str]) -> None:
    """Add or replace metadata properties, keeping the others; `target` is a ModelProto or an ONNX file (rewritten
    in place, its external data untouched)."""
    model = target if isinstance(target, onnx.ModelProto) else onnx.load(str(target), load_external_data=False)
    kept = {prop.key: prop.value for prop in model.metadata_props if prop.key not in props}
    onnx.helper.set_model_props(model, {**kept, **props})
    if not isinstance(target, onnx.ModelProto):
        onnx.save_model(model, str(target))


def metadata(model: onnx.ModelProto, key: str) -> str | None:
    return next((prop.value for prop in model.metadata_props if prop.key == key), None)


def needs_external_data(path: Path) -> bool:
    """Whether rewriting the model at `path` must use external data (onnxruntime's quantizers ask)."""
    return size_on_disk(path) > EXTERNAL_DATA_BYTES


def external_files(path: Path) -> list[Path]:
    """The external data files the model at `path` reads, read from the graph without loading them."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    locations = {ExternalDataInfo(tensor).location for tensor in _tensors(model) if uses_external_data(tensor)}
    return [Path(path).parent / location for location in sorted(locations)]


def _tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t


def size_on_disk(path: Path) -> int:
    """The graph file and its external data together."""
    return Path(path).stat().st_size + sum(f.stat().st_size for f in external_files(path) if f.is_file())


@contextlib.contextmanager
def as_file(model: onnx.ModelProto):
    """A path holding `model` (through external data when it is large), for APIs that take paths."""
    with tempfile.TemporaryDirectory(prefix="ce-model-") as tmp:
        path = Path(tmp) / "model.onnx"
        save(model, path)
        yield path


def session(model: onnx.ModelProto, options=None):
    """An onnxruntime CPU session (runtimes.ort_session.Session) of an in-memory model of any size."""
    from ..runtimes.ort_session import Session

    if model.ByteSize() < PROTOBUF_LIMIT:
        return Session(model.SerializeToString(), options)
    with as_file(model) as path:
        return Session(str(path), options)


def session_with_outputs(model: onnx.ModelProto, names: list[str]):
    """A function of feeds that runs `model` in onnxruntime and returns the named tensors, intermediate ones
    included (each becomes a graph output of a copy, of whatever type it has)."""
    import onnxruntime as ort

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {out.name for out in copy.graph.output}
    for name in names:
        if name not in present:
            copy.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    run = session(copy, options)
    inputs = {value.name for value in run.get_inputs()}
    return lambda feeds: dict(zip(names, run.run(names, {k: v for k, v in feeds.items() if k in inputs}),
                                  strict=True))


def artifact_bytes(path: Path) -> int:
    """An artifact's size on disk: an ONNX graph with its external data, an OpenVINO IR with its weights, any other
    file as it is."""
    path = Path(path)
    if path.suffix == ".onnx":
        return size_on_disk(path)
    return path.stat().st_size + sum(file.stat().st_size for file in companions(path))


def companions(path: Path) -> list[Path]:
    """The files an artifact reads beside itself: an ONNX graph's external data, an OpenVINO IR's weights."""
    path = Path(path)
    if path.suffix == ".onnx":
        return [file for file in external_files(path) if file.is_file()]
    weights = path.with_suffix(".bin")
    return [weights] if path.suffix == ".xml" and weights.is_file() else []


def load_graph(path: Path) -> onnx.ModelProto:
    """The model's graph without its external weights, or a usage error naming the file when its bytes are not an
    ONNX model with a graph."""
    from ..errors import UsageError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's decode errors, a truncated or foreign file
        raise UsageError(f"{path}: not a readable ONNX model, the file may be corrupt or truncated ({exc})") from None
    if not model.graph.node:
        raise UsageError(f"{path}: the ONNX file holds no graph (corrupt or truncated?)")
    return model
