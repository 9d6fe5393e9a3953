"""A small image generator for the FID path: latent noise (16 values) to an 8x8 grey digit, trained in the test by
fitting fixed random latents to the digits (each latent learns one image), so its images look like digits."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

LATENT = 16


class Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(LATENT, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(),
                                  nn.Linear(256, 64), nn.Sigmoid())

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.body(latent).reshape(-1, 1, 8, 8)


def generator() -> Generator:
    return Generator().eval()


def train(images: np.ndarray, steps: int = 600, seed: int = 0) -> tuple[dict, np.ndarray]:
    """(state dict, the latents it learned to draw the images from)."""
    torch.manual_seed(seed)
    latents = torch.randn(len(images), LATENT)
    target = torch.from_numpy(images)
    model = Generator()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(latents), target)
        loss.backward()
        optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, latents.numpy()
