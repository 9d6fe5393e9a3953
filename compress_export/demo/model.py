"""A small CNN for 8x8 digits. `digits_cnn` is a factory the CLI can load by name.
Only the demo imports this module, so torch is imported at the top."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

WEIGHTS = Path(__file__).with_name("digits_cnn.safetensors")


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(32 * 4 * 4, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(image), 1))


def build() -> DigitsCNN:
    return DigitsCNN()


def digits_cnn() -> DigitsCNN:
    """The trained demo model (weights from the package)."""
    from safetensors.torch import load_file

    model = build()
    model.load_state_dict(load_file(str(WEIGHTS)))
    return model.eval()
