#!/usr/bin/env python3
"""PyTorch CPU twin of the benchmark's fine-tuning path (lib/bench/finetune.ts), run by
`npm run bench -- --model finetune --reference` in alternating rounds with the tfjs side.

    python3 bench/torch_finetune.py --batch 25 --seconds 20 [--threads N]

Network: face-api's FaceRecognitionNet after stage64, on its 64x17x17 maps: stage128
(down 64->128, 2 x residual 128), stage256 (down 128->256, 2 x residual 256, down 256->256),
descriptor (spatial mean, 256x128 matrix), then linear 20. Every conv is face-api's convLayer:
conv + bias, then a per-channel scale (x * w + b), ReLU after the first conv of a block.
Residual: relu(conv2(conv1(x)) + x). Down: conv1 3x3 stride 2 'valid', conv2 3x3 'same';
shortcut 2x2 average pool, channels padded with zeros; the conv branch padded with a zero row
and column where the pool's side is larger. Adam and cross-entropy on random data (speed only).
Prints one JSON line: {"model", "batch", "threads", "train_img_s", "infer_img_s"}.

    python3 bench/torch_finetune.py --model finetune-pixels --batch 25 --seconds 20

is the pixel path (best train --pixels, lib/bench/throughput.ts): uint8 150x150 RGB faces,
augmented afresh every step (rotation, zoom, shift and mirror through affine_grid/grid_sample,
bilinear, edges repeated; brightness and contrast), the frozen stem..stage64 forward under
no_grad (7x7 stride-2 'valid' conv, 3x3 stride-2 max pool, 3 residual 32, down 32->64,
3 residual 64), then a training step of the tail above.
"""
import math
import sys
import torch
import torch.nn as nn
from torch_harness import parse, report, run
import torch.nn.functional as F


class ConvLayer(nn.Module):
    def __init__(self, cin, cout, stride, pad, relu):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, pad)
        self.w = nn.Parameter(torch.ones(1, cout, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, cout, 1, 1))
        self.relu = relu

    def forward(self, x):
        y = self.conv(x) * self.w + self.b
        return F.relu(y) if self.relu else y


class Residual(nn.Module):
    def __init__(self, cin, cout, down):
        super().__init__()
        self.down = down
        self.conv1 = ConvLayer(cin, cout, 2 if down else 1, 0 if down else 1, True)
        self.conv2 = ConvLayer(cout, cout, 1, 1, False)

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        if not self.down:
            return F.relu(out + x)
        pooled = F.avg_pool2d(x, 2, 2)
        dh, dw = pooled.shape[2] - out.shape[2], pooled.shape[3] - out.shape[3]
        if dh or dw:
            out = F.pad(out, (0, dw, 0, dh))
        dc = out.shape[1] - pooled.shape[1]
        if dc:
            pooled = F.pad(pooled, (0, 0, 0, 0, 0, dc))
        return F.relu(pooled + out)


class Tail(nn.Module):
    def __init__(self, classes=20):
        super().__init__()
        self.blocks = nn.Sequential(
            Residual(64, 128, True), Residual(128, 128, False), Residual(128, 128, False),
            Residual(128, 256, True), Residual(256, 256, False), Residual(256, 256, False),
            Residual(256, 256, True))
        self.fc = nn.Parameter(torch.randn(256, 128) * 0.05)
        self.head = nn.Linear(128, classes)

    def forward(self, x):
        return self.head(self.blocks(x).mean((2, 3)) @ self.fc)


class Trunk(nn.Module):
    """face-api's stem to stage64 on 150x150 RGB in [0, 1] (mean subtraction included)."""
    def __init__(self):
        super().__init__()
        self.register_buffer('mean', torch.tensor([122.782, 117.001, 104.298]).view(1, 3, 1, 1) / 255)
        self.stem = nn.Conv2d(3, 32, 7, 2, 0)
        self.w = nn.Parameter(torch.ones(1, 32, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, 32, 1, 1))
        self.blocks = nn.Sequential(
            Residual(32, 32, False), Residual(32, 32, False), Residual(32, 32, False),
            Residual(32, 64, True), Residual(64, 64, False), Residual(64, 64, False), Residual(64, 64, False))

    def forward(self, x):
        y = F.relu(self.stem(x - self.mean) * self.w + self.b)
        return self.blocks(F.max_pool2d(y, 3, 2))


def augment(x, g, rotation=10.0, scale=0.08, shift=0.04, brightness=0.1, contrast=0.15):
    """The defaults of lib/best/augment.ts, per face, on a [B, 3, H, W] batch in [0, 1]."""
    n = x.shape[0]
    u = lambda: torch.rand(n, generator=g) * 2 - 1
    angle = u() * rotation * math.pi / 180
    s = 1 + u() * scale
    dx, dy = u() * shift * 2, u() * shift * 2  # affine_grid's units: the side is 2
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos * flip, sin, -(cos * dx + sin * dy)], 1),
                         torch.stack([-sin * flip, cos, sin * dx - cos * dy], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    y = F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=True)
    mean = y.mean((1, 2, 3), keepdim=True)
    c = (1 + u() * contrast).view(n, 1, 1, 1)
    b = (u() * brightness).view(n, 1, 1, 1)
    return ((y - mean) * c + mean + b).clamp_(0, 1)


def run_pixels():
    a = parse('finetune-pixels')
    trunk, tail = Trunk().eval(), Tail()
    for q in trunk.parameters():
        q.requires_grad_(False)
    opt = torch.optim.Adam(tail.parameters())
    loss = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    faces = torch.randint(0, 256, (a.batch, 150, 150, 3), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 20, (a.batch,), generator=g)
    plain = faces.permute(0, 3, 1, 2).float() / 255

    def train_step():
        with torch.no_grad():
            maps = trunk(augment(faces.permute(0, 3, 1, 2).float() / 255, g))
        opt.zero_grad()
        loss(tail(maps), y).backward()
        opt.step()

    report('finetune-pixels', a, train_step, lambda: tail(trunk(plain)), tail.train, tail.eval)


if __name__ == '__main__':
    if 'finetune-pixels' in sys.argv:
        run_pixels()
    else:
        run('finetune', Tail, (64, 17, 17))
