"""The float layers of the trt-int8 ONNX in FP16. TensorRT 11 builds only strongly typed networks: each layer
runs in the type the ONNX gives it (no FP16 builder flag any more), so the precision of the layers left
unquantized is written into the graph, as ModelOpt's AutoCast does. Q/DQ then take FP16 scales, which ONNX
defines from opset 19. Layers whose outputs come near FP16's limit on the calibration data stay FP32."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from ...errors import ExportError
from ...graphs.selection import default_opset
from ..onnx.fp16_headroom import mixed_fp16
from .lint import FP16_QDQ_OPSET


@dataclass(frozen=True)
class MixedPrecision:
    model: onnx.ModelProto
    kept_fp32: tuple[str, ...]  # nodes whose outputs left too little FP16 headroom


def to_mixed_fp16(qdq: onnx.ModelProto, fp32: onnx.ModelProto, feeds: dict[str, np.ndarray] | None,
                  known_peaks: dict[str, float] | None = None) -> MixedPrecision:
    """`qdq` with its float layers, weights and Q/DQ scales in FP16, inputs and outputs kept FP32. Node names
    are shared by the FP32 graph and its QDQ rewrite, so the risks found on the first apply to the second."""
    if default_opset(qdq) < FP16_QDQ_OPSET:
        try:
            qdq = onnx.version_converter.convert_version(qdq, FP16_QDQ_OPSET)
        except Exception as exc:
            raise ExportError(f"FP16 Q/DQ needs opset {FP16_QDQ_OPSET} and onnx could not convert the model from opset "
                              f"{default_opset(qdq)} ({str(exc).splitlines()[0][:160]}); "
                              "keep the float layers FP32 with --trt-float fp32") from None
    try:
        converted, kept = mixed_fp16(qdq, fp32, feeds, known_peaks)
    except Exception as exc:
        raise ExportError(f"FP16 conversion of the trt-int8 graph failed ({str(exc).splitlines()[0][:160]}); "
                          "keep the float layers FP32 with --trt-float fp32") from None
    return MixedPrecision(converted, tuple(kept))


