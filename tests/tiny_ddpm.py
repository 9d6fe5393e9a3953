"""A small DDPM for the sampler path: predicts the noise in an 8x8 grey digit at a timestep of a 1000-step linear
schedule; (sample [N, 1, 8, 8], timestep [N]) -> noise [N, 1, 8, 8]. Trained in the test on the digits in seconds."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

TRAIN_STEPS = 1000
FREQUENCIES = 8


class Denoiser(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.exp(torch.arange(FREQUENCIES) * (-math.log(1000.0) / FREQUENCIES)))
        self.body = nn.Sequential(nn.Linear(64 + 2 * FREQUENCIES, 256), nn.SiLU(), nn.Linear(256, 256), nn.SiLU(),
                                  nn.Linear(256, 64))

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        angles = timestep.float().reshape(-1, 1) * self.frequencies
        features = torch.cat([sample.reshape(-1, 64), torch.sin(angles), torch.cos(angles)], dim=1)
        return self.body(features).reshape(-1, 1, 8, 8)


def denoiser() -> Denoiser:
    return Denoiser().eval()


def alphas_cumprod() -> np.ndarray:
    return np.cumprod(1.0 - np.linspace(1e-4, 0.02, TRAIN_STEPS))


def train(images: np.ndarray, steps: int = 1500, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    clean = torch.from_numpy(images.astype(np.float32)).reshape(-1, 1, 8, 8)
    alphas = torch.from_numpy(alphas_cumprod()).float()
    model = Denoiser()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(steps):
        rows = torch.randint(0, len(clean), (256,))
        t = torch.randint(0, TRAIN_STEPS, (256,))
        noise = torch.randn(256, 1, 8, 8)
        alpha = alphas[t].reshape(-1, 1, 1, 1)
        noisy = alpha.sqrt() * clean[rows] + (1 - alpha).sqrt() * noise
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(noisy, t.float()), noise)
        loss.backward()
        optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def ddim(call, start: np.ndarray, steps: int = 10) -> tuple[np.ndarray, list[np.ndarray]]:
    """An independent DDIM (eta 0) for the test to hold the tool's against: (final images, sample before each call)."""
    alphas = alphas_cumprod()
    times = np.round(np.linspace(TRAIN_STEPS - 1, 0, steps)).astype(int)
    x, seen = start.astype(np.float64), []
    for i, t in enumerate(times):
        seen.append(x.copy())
        eps = call(x.astype(np.float32), np.full(len(x), t, np.float32)).astype(np.float64)
        alpha, before = alphas[t], alphas[times[i + 1]] if i + 1 < steps else 1.0
        clean = (x - np.sqrt(1 - alpha) * eps) / np.sqrt(alpha)
        x = np.sqrt(before) * clean + np.sqrt(1 - before) * eps
    return x, seen
