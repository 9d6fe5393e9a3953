"""QAT's settings and the record of one fine-tuning run, shared by the PyTorch and Keras paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class QatSettings:
    epochs: int = 3
    steps: int | None = None
    lr: float = 1e-5
    temperature: float = 2.0
    alpha: float = 0.5
    seed: int = 0
    hidden: float = 1.0  # PyTorch: weight of matching each block's output to the FP32 model's (--distill-hidden)


@dataclass
class QatResult:
    ranges: dict[str, tuple[float, float]]
    tensors: list[str]
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    hidden_pairs: int = 0  # block outputs matched beside the final outputs

    def to_dict(self, settings: QatSettings) -> dict:
        return {"settings": settings.__dict__, "fake_quantized_activations": len(self.tensors),
                "hidden_pairs": self.hidden_pairs, "steps": self.steps, "seconds": self.seconds,
                "loss_first": self.losses[0] if self.losses else None,
                "loss_last": self.losses[-1] if self.losses else None}


def plot_losses(losses: list[float], path: Path, title: str = "QAT fine-tuning") -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.plot(range(1, len(losses) + 1), losses, color="#4c72b0")
    axes.set_xlabel("step")
    axes.set_ylabel("distillation loss")
    axes.set_yscale("log")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return True
