"""QAT for PyTorch modules: the FP32 model teaches its fake-quantized copy, no labels needed.

Fake-quant sits where the ONNX export will put Q/DQ: each activation that feeds a quantized Linear or
Conv, and each operand of a product of two activations (attention's Q·Kᵀ and probabilities·V,
qat_products), found by matching values against the FP32 ONNX graph's tensors, with the
range the calibrator chose as the starting point and learned from there (LSQ), and per-channel
symmetric INT8 on the weights (straight-through estimator). The loss is distillation against the
teacher's outputs: KL with temperature on classifier logits, MSE and cosine otherwise; labels, when
the data has them, add cross-entropy weighted by `alpha`; and each block of a layer stack matches the
FP32 block's output (hidden_states, weight `hidden`), which teaches with every token rather than the
pooled output alone.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..calibration.range_table import RangeTable
from ..data.calibration_data import CalibrationData
from ..errors import UsageError
from ..graphs.onnx_io import session as onnx_session
from .hidden_states import HiddenStates
from .losses import distillation_loss
from .qat_products import find_tensor, intercept_products, product_key, split_product_key
from .qat_settings import QatResult, QatSettings
from .training import optimizer_step, run_steps, total_steps

ACT_MIN, ACT_MAX = 0, 255  # UINT8 asymmetric activations, as onnx-int8 exports them
MATCH_TOLERANCE = 1e-4


def _quantizable_modules(module) -> dict[str, object]:
    import torch

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    return {name: child for name, child in module.named_modules() if isinstance(child, kinds)}


def match_inputs(module, onnx_path: Path, candidates: list[str], feeds: dict[str, np.ndarray], forward
                 ) -> dict[str, str]:
    """Quantization point -> the ONNX activation tensor holding the same values: a module's name for its input,
    `@<call>.<operand>` (qat_products.product_key) for an operand of an activation product."""
    import onnx
    import onnxruntime as ort
    import torch

    seen: dict[str, np.ndarray] = {}

    def record(name: str):
        def hook(_module, args) -> None:
            seen.setdefault(name, args[0].detach().float().cpu().numpy())

        return hook

    def record_product(index, a, b):
        for operand, value in enumerate((a, b)):
            seen[product_key(index, operand)] = value.detach().float().cpu().numpy()
        return a, b

    hooks = [child.register_forward_pre_hook(record(name)) for name, child in _quantizable_modules(module).items()]
    try:
        with torch.no_grad(), intercept_products(record_product):
            forward(module, feeds)
    finally:
        for hook in hooks:
            hook.remove()
    graph = onnx.load(str(onnx_path))
    present = {out.name for out in graph.graph.output}
    for name in candidates:
        if name not in present:
            graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = onnx_session(graph, options)
    inputs = {i.name for i in session.get_inputs()}
    values = dict(zip(candidates, session.run(candidates, {k: v for k, v in feeds.items() if k in inputs}),
                      strict=True))
    matched = {}
    for name, value in seen.items():
        tensor = find_tensor(value, values, MATCH_TOLERANCE)
        if tensor is not None:
            matched[name] = tensor
    return matched


def _act_params(lo: float, hi: float):
    import torch

    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / (ACT_MAX - ACT_MIN), 1e-8)
    zero_point = float(np.clip(round(ACT_MIN - lo / scale), ACT_MIN, ACT_MAX))
    return torch.nn.Parameter(torch.tensor([scale])), torch.tensor([zero_point])


def _fake_quant_weight(weight):
    import torch

    flat = weight.detach().reshape(weight.shape[0], -1).abs().amax(dim=1).clamp(min=1e-8)
    scale = (flat / 127.0).float()
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -127, 127)


class FakeQuantizer:
    """Holds the learnable activation scales and patches the matched modules' forward."""

    def __init__(self, module, matched: dict[str, str], ranges: dict[str, tuple[float, float]]):
        import torch

        self.modules = _quantizable_modules(module)
        self.matched = {name: tensor for name, tensor in matched.items() if tensor in ranges}
        self.params = {tensor: _act_params(*ranges[tensor]) for tensor in set(self.matched.values())}
        self.scales = torch.nn.ParameterList([scale for scale, _ in self.params.values()])
        self._saved = {}
        self.products: dict[tuple[int, int], str] = {}
        for name, tensor in self.matched.items():
            product = split_product_key(name)
            if product is not None:
                self.products[product] = tensor
                continue
            child = self.modules[name]
            self._saved[name] = child.forward
            child.forward = self._forward(child, tensor)

    def _fake_quant(self, inputs, tensor: str):
        import torch

        scale, zero_point = self.params[tensor]
        return torch._fake_quantize_learnable_per_tensor_affine(
            inputs, scale, zero_point, ACT_MIN, ACT_MAX, 1.0 / (float(inputs.numel()) * ACT_MAX) ** 0.5)

    def running(self):
        """The context a student forward runs in: its activation products' operands fake-quantized too."""
        def operands(index, a, b):
            pair = [a, b]
            for side in (0, 1):
                tensor = self.products.get((index, side))
                if tensor is not None:
                    pair[side] = self._fake_quant(pair[side], tensor)
            return pair[0], pair[1]

        return intercept_products(operands)

    def _forward(self, child, tensor: str):
        import torch
        import torch.nn.functional as F  # noqa: N812

        def forward(inputs):
            quantized = self._fake_quant(inputs, tensor)
            weight = _fake_quant_weight(child.weight)
            if isinstance(child, torch.nn.Linear):
                return F.linear(quantized, weight, child.bias)
            return child._conv_forward(quantized, weight, child.bias)

        return forward

    def ranges(self) -> dict[str, tuple[float, float]]:
        result = {}
        for tensor, (scale, zero_point) in self.params.items():
            s, z = float(scale.detach().abs()), float(zero_point)
            result[tensor] = ((ACT_MIN - z) * s, (ACT_MAX - z) * s)
        return result

    def remove(self) -> None:
        for name, forward in self._saved.items():
            self.modules[name].forward = forward


def fine_tune(module, forward: Callable, matched: dict[str, str], table: RangeTable, data: CalibrationData,
              settings: QatSettings, on_step: Callable[[float], None] | None = None):
    """Returns the fine-tuned copy of `module` and the learned activation ranges."""
    import torch

    if not matched:
        raise UsageError("--qat found no Linear/Conv input in the exported graph to fine-tune")
    torch.manual_seed(settings.seed)
    teacher = module
    student = copy.deepcopy(module)
    student.train()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    quantizer = FakeQuantizer(student, matched, dict(table.ranges))
    weights = [p for p in student.parameters() if p.dtype.is_floating_point]
    for parameter in weights:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW([{"params": weights, "lr": settings.lr, "weight_decay": 0.0},
                                   {"params": list(quantizer.scales), "lr": settings.lr * 10, "weight_decay": 0.0}])
    result = QatResult(ranges={}, tensors=sorted(quantizer.params))
    start = time.perf_counter()
    total = total_steps(settings.steps, settings.epochs, data)

    hidden = HiddenStates(student, teacher) if settings.hidden > 0 else None

    def step(feeds, labels) -> float:
        with torch.no_grad():
            expected = forward(teacher, feeds)
        with quantizer.running():
            predicted = forward(student, feeds)
        loss = distillation_loss(predicted, expected, labels, settings.temperature, settings.alpha)
        if hidden is not None:  # every token of every block teaches, not only the pooled output
            loss = loss + settings.hidden * hidden.loss()
        return optimizer_step(optimizer, loss)

    try:
        result.losses = run_steps(data, total, step, on_step)
        result.steps = len(result.losses)
    finally:
        quantizer.remove()
        if hidden is not None:
            hidden.close()
    result.hidden_pairs = len(hidden.pairs) if hidden is not None else 0
    student.eval()
    for parameter in student.parameters():
        parameter.requires_grad_(False)
    result.ranges = quantizer.ranges()
    result.seconds = time.perf_counter() - start
    return student, result
