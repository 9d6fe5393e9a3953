"""A three-layer network whose middle activation carries one planted outlier channel (5000) that the
next layer ignores. Quantizing that activation flattens every other channel to zero; keeping it in
float restores the output. The right answer for the quality budget is known: that one tensor."""

import torch
from torch import nn


class PlantedOutliers(nn.Module):
    def __init__(self, planted: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Linear(16, 32)
        self.second = nn.Linear(32, 32)
        self.third = nn.Linear(32, 8)
        if not planted:
            return
        with torch.no_grad():
            self.first.weight[0].zero_()
            self.first.bias[0] = 5000.0
            self.second.weight[:, 0] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.first(x))
        return self.third(torch.relu(self.second(hidden)))


def factory() -> PlantedOutliers:
    return PlantedOutliers().eval()


def without_outliers() -> PlantedOutliers:
    """The same network with nothing planted: any outlier comes from the data."""
    return PlantedOutliers(planted=False).eval()
