"""Stream calibration batches through an FP32 ONNX graph with chosen inner tensors as extra outputs:
one batch's values at a time, so memory stays bounded by a batch whatever the dataset's size."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from ..data.calibration_data import CalibrationData
from ..graphs.onnx_io import save
from ..runtimes.ort_session import Session


def stream_tensors(model: onnx.ModelProto | Path, tensors: Sequence[str], data: CalibrationData,
                   on_batch: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], None],
                   purpose: str = "the model during calibration") -> None:
    """Calls on_batch(values by tensor name, the batch's feeds) for every calibration batch."""
    import onnxruntime as ort

    model = onnx.load(str(model)) if isinstance(model, Path) else onnx.ModelProto.FromString(
        model.SerializeToString())
    existing = {output.name for output in model.graph.output}
    for name in tensors:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory(prefix="ce-stream-") as tmp:
        augmented = Path(tmp) / "augmented.onnx"
        save(model, augmented)
        del model
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        session = Session(str(augmented), options, purpose)
        names = list(tensors)
        for feeds in data.batches():
            on_batch(dict(zip(names, session.run(names, feeds), strict=True)), feeds)
