"""A digits CNN with a residual Add and a Concat, for the TensorRT tests. Trained by a fixture."""

import torch
from torch import nn


class ResidualConcatCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.block_a = nn.Conv2d(16, 16, 3, padding=1)
        self.block_b = nn.Conv2d(16, 16, 3, padding=1)
        self.narrow = nn.Conv2d(16, 8, 1)
        self.wide = nn.Conv2d(16, 8, 3, padding=1)
        self.classifier = nn.Linear(16 * 4 * 4, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(image))
        x = torch.relu(x + self.block_b(torch.relu(self.block_a(x))))
        x = torch.relu(torch.cat([self.narrow(x), self.wide(x)], dim=1))
        return self.classifier(torch.flatten(nn.functional.max_pool2d(x, 2), 1))


def factory() -> ResidualConcatCNN:
    return ResidualConcatCNN().eval()


def train(images, labels, epochs: int = 12, seed: int = 0, build=ResidualConcatCNN) -> dict:
    torch.manual_seed(seed)
    model = build().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    return {name: value.contiguous() for name, value in model.state_dict().items()}
