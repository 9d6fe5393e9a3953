"""ONNX models: read with onnx, checked, and run by onnxruntime as their own reference."""

from __future__ import annotations

from pathlib import Path

import onnx

from ..errors import UsageError
from ..graphs.onnx_io import external_files, load_graph
from ..runtimes.base import Runner
from ..runtimes.onnxruntime import OnnxRuntimeRunner
from ..specs import TensorSpec
from ..util.hashing import sha256_files
from .base import LoadedModel

_ONNX_TO_NUMPY = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}


def read_onnx(path: Path, load_external_data: bool = True) -> onnx.ModelProto:
    """The checked model; its external data (weights beside the graph) is loaded only when asked."""
    model = load_graph(path)
    missing = [file.name for file in external_files(path) if not file.is_file()]
    if missing:
        raise UsageError(f"{path}: its weights are in {', '.join(missing)}, which is missing beside it")
    try:
        onnx.checker.check_model(str(path))  # by path: external data and models over 2 GB
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UsageError(f"{path}: invalid ONNX model ({first})") from None
    except UnicodeDecodeError:  # the checker's message quotes a name whose bytes are not UTF-8
        raise UsageError(f"{path}: invalid ONNX model (a name or string in it is not UTF-8 text: the file may be "
                         "corrupt)") from None
    if load_external_data:
        onnx.load_external_data_for_model(model, str(Path(path).parent))
    return model


def onnx_input_specs(model: onnx.ModelProto) -> tuple[TensorSpec, ...]:
    initializers = {init.name for init in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(  # old exporters write -1 (or 0) for a dynamic dimension
            dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0
            else (dim.dim_param or f"{value.name}_dim{axis}")
            for axis, dim in enumerate(tensor.shape.dim)
        )
        specs.append(TensorSpec(value.name, dims, _ONNX_TO_NUMPY.get(tensor.elem_type, "float32")))
    return tuple(specs)


class OnnxModel(LoadedModel):
    framework = "onnx"

    def __init__(self, path: Path):
        model = read_onnx(path, load_external_data=False)  # the graph alone: weights stay on disk
        self.external = external_files(path)
        super().__init__(str(path), sha256_files(path, *self.external), onnx_input_specs(model))
        self.path = path

    def export_onnx(self, path: Path, example: dict) -> None:
        """The working graph: the shipped one, pre-processed for quantization (sources/onnx_prepare.py)."""
        from .onnx_prepare import prepare_graph

        self.prepared = prepare_graph(self.path, path, example)

    def describe(self) -> dict:
        described = super().describe()
        if getattr(self, "prepared", None):
            described["prepared"] = self.prepared
        return described

    def reference_runner(self) -> Runner:
        return OnnxRuntimeRunner(str(self.path))
