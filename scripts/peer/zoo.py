"""The seeds' models of ZOO.md as `disttrain bench` times them, for bench_step.py: each instance of
`disttrain models` by name, with its sample shape and a forward(x, t) taking the integer step t as
bench's training step gives it. The modules are the golden generator's (Tests/Fixtures/generate/zoo_modules.py),
written from ZOO.md; this file only says how bench feeds them.
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "generate"))
from zoo_modules import ContextUnet, DDIMUNet, MyUNet, NeedleUNet  # noqa: E402

T = 1000


class ContextUnetStep(nn.Module):
    """bench's ContextUnet: the time as t/T and no labels (the zero context), as Conditioning gives it."""

    def __init__(self, in_channels, n_feat, n_cfeat, height):
        super().__init__()
        self.net = ContextUnet(in_channels, n_feat, n_cfeat, height)

    def forward(self, x, t):
        return self.net(x, t.float() / T, torch.zeros(x.shape[0], self.net.n_cfeat))


class DDIMUNetStep(nn.Module):
    """bench's DDIM U-Net: fed the noise variance 1 − ᾱ_t of the step's t (DDPM's linear schedule), as
    Conditioning gives a continuous-input model under bench's schedule; the timing does not depend on it."""

    def __init__(self, in_channels):
        super().__init__()
        self.net = DDIMUNet(in_channels)
        betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
        self.register_buffer("noise_variance", (1 - torch.cumprod(1 - betas, 0)).float(), persistent=False)

    def forward(self, x, t):
        return self.net(x, self.noise_variance[t].view(-1, 1, 1, 1))


# name → (model name in disttrain, sample shape [C, H, W], builder): the instances `disttrain models` lists.
INSTANCES = {
    "context_unet": ("context-unet", (3, 16, 16), lambda: ContextUnetStep(3, 64, 5, 16)),
    "context_unet_fmnist": ("context-unet", (1, 28, 28), lambda: ContextUnetStep(1, 64, 10, 28)),
    "needle_unet": ("needle-unet", (3, 64, 64), lambda: NeedleUNet(3)),
    "needle_unet_small": ("needle-unet", (3, 64, 64), lambda: NeedleUNet(3, (32, 64, 128), 16)),
    "my_unet": ("my-unet", (1, 28, 28), lambda: MyUNet(1)),
    "ddim_unet": ("ddim-unet", (1, 64, 64), lambda: DDIMUNetStep(1)),
    "ddim_unet_rgb": ("ddim-unet", (3, 64, 64), lambda: DDIMUNetStep(3)),
}
