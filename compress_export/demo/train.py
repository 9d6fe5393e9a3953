"""Retrain the demo weights: `python -m compress_export.demo.train` (a few seconds on a CPU)."""

from __future__ import annotations

import numpy as np


def train(epochs: int = 40, seed: int = 0) -> float:
    import torch
    from safetensors.torch import save_file

    from .data import digits_split
    from .model import WEIGHTS, build

    torch.manual_seed(seed)
    split = digits_split()
    images, labels = (torch.from_numpy(a) for a in split["train"])
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(labels), generator=generator).split(64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
            loss.backward()
            optimizer.step()
    model.eval()
    val_images, val_labels = split["val"]
    with torch.no_grad():
        predictions = model(torch.from_numpy(val_images)).argmax(1).numpy()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(WEIGHTS))
    return float(np.mean(predictions == val_labels))


if __name__ == "__main__":
    print(f"validation accuracy {train():.4f}")
