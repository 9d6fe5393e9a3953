"""Tiny random-weight networks with the couplings real CNNs have, for pruning tests: each builds in
milliseconds and takes a (2, 3, 16, 16) image."""

import torch
from torch import nn


def conv_bn(cin, cout, k=1, stride=1, groups=1, act=nn.SiLU):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         act())


class HeldOutCnn(nn.Module):
    """Stem Conv-BN-hardswish, a depthwise + pointwise residual block, a concat of the block with a narrower
    SiLU branch, average pooling, flatten -> Linear."""

    def __init__(self, classes=10, channels=3, width=16, side=4):
        super().__init__()
        self.stem = conv_bn(channels, width, 3, act=nn.Hardswish)
        self.dw = conv_bn(width, width, 3, groups=width, act=nn.ReLU)
        self.pw = nn.Sequential(nn.Conv2d(width, width, 1), nn.BatchNorm2d(width))  # no activation: the residual
        self.branch = nn.Sequential(nn.Conv2d(width, side, 1), nn.SiLU())
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear((width + side) * 4, classes)

    def forward(self, x):
        y = self.stem(x)
        y = torch.cat([y + self.pw(self.dw(y)), self.branch(y)], dim=1)
        return self.fc(torch.flatten(self.pool(y), 1))


class C2f(nn.Module):
    """YOLOv8's C2f: a conv whose output is split in two, bottlenecks chained on the second half, every
    piece concatenated."""

    def __init__(self, cin=16, cout=16, n=2):
        super().__init__()
        self.c = cout // 2
        self.cv1 = conv_bn(cin, 2 * self.c)
        self.cv2 = conv_bn((2 + n) * self.c, cout)
        self.m = nn.ModuleList(nn.Sequential(conv_bn(self.c, self.c, 3), conv_bn(self.c, self.c, 3)) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            y.append(y[-1] + block(y[-1]))
        return self.cv2(torch.cat(y, 1))


class YoloLike(nn.Module):
    """Stem, C2f, a stride-2 stage, an FPN top-down path (upsample + concat of unequal widths) and a
    per-location head that writes the output (its width is the model's)."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, stride=2)
        self.c2f = C2f(16, 16)
        self.down = conv_bn(16, 32, 3, stride=2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = C2f(48, 16, n=1)
        self.head = nn.Conv2d(16, 6, 1)

    def forward(self, x):
        p3 = self.c2f(self.stem(x))
        p4 = self.down(p3)
        return self.head(self.fuse(torch.cat([self.up(p4), p3], 1))).flatten(2)


class SqueezeExcite(nn.Module):
    """MobileNetV3's SE block with grouped (not depthwise) convolutions around it."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 16, 3)
        self.grouped = conv_bn(16, 32, 3, groups=4)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(32, 8, 1), nn.ReLU(), nn.Conv2d(8, 32, 1),
                                nn.Hardsigmoid())
        self.project = conv_bn(32, 16, 1, act=nn.Identity)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        y = self.grouped(self.stem(x))
        y = self.project(y * self.se(y))
        return self.fc(y.mean((2, 3)))


class ReshapeHead(nn.Module):
    """Convolutions flattened with view() straight into an MLP."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 8, 3, stride=2), conv_bn(8, 16, 3, stride=2))
        self.mlp = nn.Sequential(nn.Linear(16 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 3))

    def forward(self, x):
        y = self.features(x)
        return self.mlp(y.view(y.shape[0], -1))


BLOCKS = {"held-out cnn": HeldOutCnn, "c2f + fpn": YoloLike, "squeeze-excite + grouped": SqueezeExcite,
          "reshape into linear": ReshapeHead}


def digits_factory() -> HeldOutCnn:
    """The held-out CNN for 1x8x8 digits (`tests/pruning_blocks.py:digits_factory`)."""
    return HeldOutCnn(channels=1, width=64, side=16).eval()


def train_digits(images, labels, epochs: int = 15, seed: int = 0) -> dict:
    from tests.residual_digits import train

    return train(images, labels, epochs, seed, build=digits_factory)
