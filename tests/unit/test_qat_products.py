"""QAT reaches attention's products of two activations: their operands are matched to the FP32 ONNX graph's tensors
and fake-quantized with learnable ranges, as module inputs are."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")


class TinyAttention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.q, self.k, self.v = (torch.nn.Linear(8, 8) for _ in range(3))
        self.out = torch.nn.Linear(8, 4)

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        probs = torch.softmax(torch.matmul(q, k.transpose(1, 2)) / 8 ** 0.5, dim=-1)
        return self.out(probs @ v)


def _forward(model, feeds):
    return {"y": model(torch.as_tensor(feeds["x"]))}


def test_attention_operands_are_matched_and_fake_quantized(tmp_path):
    import onnx

    from compress_export.compression.qat_products import product_key
    from compress_export.compression.qat_torch import FakeQuantizer, match_inputs

    module = TinyAttention().eval()
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype(np.float32)
    path = tmp_path / "attention.onnx"
    torch.onnx.export(module, (torch.as_tensor(x),), str(path), input_names=["x"], output_names=["y"],
                      dynamo=False)
    graph = onnx.load(str(path))
    products = [n for n in graph.graph.node if n.op_type == "MatMul"
                and not any(i in {t.name for t in graph.graph.initializer} for i in n.input)]
    candidates = sorted({name for n in products for name in n.input}
                        | {n.input[0] for n in graph.graph.node if n.op_type in ("MatMul", "Gemm")})
    matched = match_inputs(module, path, candidates, {"x": x}, _forward)
    keys = {product_key(i, side) for i in range(2) for side in (0, 1)}
    assert keys <= set(matched)
    assert {matched[key] for key in keys} == {name for n in products for name in n.input}

    ranges = {matched[key]: (-0.05, 0.05) for key in keys}  # narrow: fake-quant must show in the output
    quantizer = FakeQuantizer(module, {key: matched[key] for key in keys}, ranges)
    with torch.no_grad():
        plain = module(torch.as_tensor(x))
        with quantizer.running():
            quantized = module(torch.as_tensor(x))
    quantizer.remove()
    assert not torch.allclose(plain, quantized, atol=1e-3)
    with torch.no_grad():
        assert torch.equal(module(torch.as_tensor(x)), plain)  # nothing left patched outside the context
