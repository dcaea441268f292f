#!/usr/bin/env python3
"""PyTorch CPU equivalent of the benchmark's MobileNet-v1 (lib/bench/mobilenet.ts), run by
`npm run bench -- --model mobilenet --reference` in alternating rounds with the tfjs side.

    python3 bench/torch_mobilenet.py --batch 25 --seconds 20 [--threads N]

Network: input 3x224x224; conv 3x3/2 (32) + BN + ReLU6; 13 depthwise-separable blocks
[depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN + ReLU6] with (filters, stride)
(64,1) (128,2) (128,1) (256,2) (256,1) (512,2) 5x(512,1) (1024,2) (1024,1);
global average pooling; linear 20. Adam and cross-entropy on random data (speed only).
Prints one JSON line: {"model", "batch", "threads", "train_img_s", "infer_img_s"}.
"""
import torch
import torch.nn as nn
from torch_harness import run

BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

def mobilenet_v1(classes=20):
    layers = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
    c = 32
    for f, s in BLOCKS:
        layers += [nn.Conv2d(c, c, 3, s, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU6(),
                   nn.Conv2d(c, f, 1, bias=False), nn.BatchNorm2d(f), nn.ReLU6()]
        c = f
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
    return nn.Sequential(*layers)


if __name__ == '__main__':
    run('mobilenet', mobilenet_v1, (3, 224, 224))
