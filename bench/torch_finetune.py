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
"""
import torch
import torch.nn as nn
from torch_harness import run
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


if __name__ == '__main__':
    run('finetune', Tail, (64, 17, 17))
