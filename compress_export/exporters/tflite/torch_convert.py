"""PyTorch to TFLite with litert-torch: float conversion, and full INT8 through PT2E whose activation
observers are replaced by our calibrators' ranges (collected at exactly the observer points)."""

from __future__ import annotations

import numpy as np

from ...calibration.collector import unquantizable
from ...calibration.histogram import TensorHistogram
from ...calibration.methods import compute_ranges
from ...calibration.range_table import RangeTable
from ...data.calibration_data import CalibrationData
from ...errors import ExportError, require
from ...specs import QuantRecipe
from .convert import captured_native_output


def _sample(feeds: dict[str, np.ndarray], names: list[str]):
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in names)


def _inference_mode(module):
    try:
        return module.eval()
    except NotImplementedError:  # the module of an ExportedProgram: already traced in inference mode
        return module


def _dynamic_batch(count: int):
    import torch

    batch = torch.export.Dim("batch", min=1, max=1024)
    return tuple({0: batch} for _ in range(count))


def _convert(module, sample, quant_config=None) -> tuple[bytes, bool]:
    """The model with a dynamic batch where litert-torch can lower one, else with batch 1 (the runner
    then feeds larger batches one sample at a time). Returns the flatbuffer and whether the batch is dynamic."""
    require("litert_torch", "tflite-torch")
    try:
        return _convert_once(module, sample, quant_config, dynamic=True), True
    except ExportError:
        return _convert_once(module, tuple(tensor[:1] for tensor in sample), quant_config, dynamic=False), False


def _convert_once(module, sample, quant_config, dynamic: bool) -> bytes:
    import tempfile
    from pathlib import Path

    import litert_torch

    with captured_native_output() as printed:
        try:
            model = litert_torch.convert(module, sample, quant_config=quant_config,
                                         dynamic_shapes=_dynamic_batch(len(sample)) if dynamic else None)
            with tempfile.TemporaryDirectory(prefix="ce-litert-") as tmp:
                path = Path(tmp) / "model.tflite"
                model.export(str(path))
                return path.read_bytes()
        except Exception as exc:  # litert-torch raises many types, all of them a failed conversion
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
            detail = [line for line in printed().splitlines() if "failed to legalize" in line.lower()
                      or "unsupported" in line.lower()]
    raise ExportError(f"litert-torch could not convert the model ({(detail[0].strip()[:300] if detail else reason)})")


def convert_float(module, feeds: dict[str, np.ndarray], names: list[str]) -> tuple[bytes, bool]:
    return _convert(_inference_mode(module), _sample(feeds, names))


def convert_dynamic(module, feeds: dict[str, np.ndarray], names: list[str]) -> tuple[bytes, bool]:
    """The float conversion, then ai-edge-quantizer's dynamic-range recipe on the flatbuffer (INT8
    weights per channel, activations quantized at run time). PT2E's dynamic mode would also quantize
    embedding tables with a zero point LiteRT's EMBEDDING_LOOKUP rejects."""
    blob, dynamic = convert_float(module, feeds, names)
    quantizer_module = require("ai_edge_quantizer.quantizer", "tflite-torch")
    recipes = require("ai_edge_quantizer.recipe", "tflite-torch")
    with captured_native_output():
        try:
            quantizer = quantizer_module.Quantizer(blob)
            quantizer.load_quantization_recipe(recipes.dynamic_wi8_afp32())
            return bytes(quantizer.quantize().quantized_model), dynamic
        except Exception as exc:  # the quantizer raises many types, all of them a failed quantization
            reason = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
    raise ExportError(f"ai-edge-quantizer could not quantize the model ({reason})")


def convert_int8(module, data: CalibrationData, names: list[str], recipe: QuantRecipe, model_sha256: str
                 ) -> tuple[bytes, bool, RangeTable]:
    require("litert_torch", "tflite-torch")
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import HistogramObserver, MinMaxObserver
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    sample = _sample(next(data.batches()), names)
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    exported = torch.export.export(_inference_mode(module), sample, dynamic_shapes=_dynamic_batch(len(sample)))
    prepared = prepare_pt2e(exported.module(), quantizer)
    observers = {name: observer for name, observer in prepared.named_modules()
                 if isinstance(observer, HistogramObserver)}
    stats = {name: TensorHistogram(recipe.num_bins) for name in observers}
    # Our histograms replace the observers': each observer becomes a pass-through that feeds ours.
    for name in observers:
        setattr(prepared, name, _Collector(stats[name]))
    with torch.no_grad():
        for feeds in data.batches():
            prepared(*_sample(feeds, names))
    skipped = unquantizable(stats)
    usable = {name: hist for name, hist in stats.items() if name not in skipped}
    ranges = compute_ranges(usable, recipe.method, recipe.percentile)
    for name, observer in observers.items():
        lo, hi = ranges.get(name, (stats[name].min, stats[name].max))
        fixed = MinMaxObserver(dtype=observer.dtype, qscheme=observer.qscheme, quant_min=observer.quant_min,
                               quant_max=observer.quant_max, eps=float(observer.eps))
        fixed.min_val.fill_(float(min(lo, 0.0)))
        fixed.max_val.fill_(float(max(hi, 0.0)))
        setattr(prepared, name, fixed)
    converted = convert_pt2e(prepared, fold_quantize=False)
    blob, dynamic = _convert(converted, sample, QuantConfig(pt2e_quantizer=quantizer))
    return blob, dynamic, RangeTable(recipe.method, ranges, model_sha256, data.fingerprint, skipped)


class _Collector:
    """Stands in for an observer module during calibration: records the tensor, returns it unchanged."""

    def __new__(cls, histogram: TensorHistogram):
        import torch

        class Collector(torch.nn.Module):
            def forward(self, tensor):
                histogram.update(tensor.detach().float().cpu().numpy())
                return tensor

        return Collector()
