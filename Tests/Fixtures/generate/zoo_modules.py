#!/usr/bin/env python3
"""PyTorch modules for four models of the zoo, written exactly from /work/shared/ZOO.md §2, §3, §4 and §5.

    python zoo_modules.py   # print and assert every instance's counts against ZOO.md §0's table

`ContextUnet` (seed 002, the DeepLearning.AI course's network), `NeedleUNet` (seed 003, the needle
framework's U-Net), `MyUNet` (seed 004, the DDPM card's U-Net with a frozen embedding table) and `DDIMUNet`
(seed 001, keras.io's DDIM residual U-Net). Their state_dict keys are the names the Swift models use; zoo_models.py imports
them to write Tests/Fixtures/zoo-models.h5. The modules are built in the order the originals build
theirs, so that PyTorch's default initialisation draws from the seed in the same order.
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# why import: the sinusoid is SPEC.md's, with the exact float32 rounding the Swift side replays; importing
# kernels.py only defines things (and sets torch to 1 thread).
from kernels import sinusoidal_time_embedding


# MARK: ContextUnet (ZOO.md §2)

class ResidualConvBlock(nn.Module):
    """conv2(conv1(x)), conv_k = [.0 Conv3x3 p1, .1 BatchNorm2d, .2 GELU]; residual: (s + h)/1.414."""

    def __init__(self, in_channels: int, out_channels: int, is_res: bool = False):
        super().__init__()
        self.is_res = is_res
        self.same_channels = in_channels == out_channels
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 1, 1), nn.BatchNorm2d(out_channels), nn.GELU())
        self.conv2 = nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, 1, 1), nn.BatchNorm2d(out_channels), nn.GELU())
        # why a persistent layer (ZOO.md §2 deviation 1): the course builds a new random 1×1 conv inside every
        # forward; here it is learned. Built last, where the course's forward would build it.
        if is_res and not self.same_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(self.conv1(x))
        if not self.is_res:
            return h
        s = x if self.same_channels else self.shortcut(x)
        return (s + h) / 1.414  # the course's constant, not √2


class UnetDown(nn.Module):
    """model.0 RCB(i→o), model.1 RCB(o→o), model.2 MaxPool2d(2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.model = nn.Sequential(ResidualConvBlock(in_channels, out_channels),
                                   ResidualConvBlock(out_channels, out_channels), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetUp(nn.Module):
    """model.0 ConvTranspose2d k2 s2 (i→o) of cat(x, skip), model.1, model.2 RCB(o→o)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 2, 2),
                                   ResidualConvBlock(out_channels, out_channels),
                                   ResidualConvBlock(out_channels, out_channels))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat((x, skip), 1))


class EmbedFC(nn.Module):
    """model.0 Linear(i→e), model.1 GELU, model.2 Linear(e→e), on the input viewed as [N, i]."""

    def __init__(self, input_dim: int, emb_dim: int):
        super().__init__()
        self.input_dim = input_dim
        self.model = nn.Sequential(nn.Linear(input_dim, emb_dim), nn.GELU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.view(-1, self.input_dim))


class ContextUnet(nn.Module):
    """ε̂ = net(x, t/T, c): x [N, C, h, h], t float [N] (step/T), c float [N, n_cfeat] (zeros: unconditional)."""

    def __init__(self, in_channels: int, n_feat: int = 256, n_cfeat: int = 10, height: int = 28):
        super().__init__()
        assert height % 4 == 0 and n_feat % 8 == 0, "ZOO.md §2: h divisible by 4, n by 8"
        self.in_channels, self.n_feat, self.n_cfeat, self.h = in_channels, n_feat, n_cfeat, height
        self.init_conv = ResidualConvBlock(in_channels, n_feat, is_res=True)
        self.down1 = UnetDown(n_feat, n_feat)
        self.down2 = UnetDown(n_feat, 2 * n_feat)
        # why h/4 (deviation 3): the pool covers the whole h/4 × h/4 map (the course's AvgPool2d(4) at 16×16).
        self.to_vec = nn.Sequential(nn.AvgPool2d(height // 4), nn.GELU())
        self.timeembed1 = EmbedFC(1, 2 * n_feat)
        self.timeembed2 = EmbedFC(1, n_feat)
        self.contextembed1 = EmbedFC(n_cfeat, 2 * n_feat)
        self.contextembed2 = EmbedFC(n_cfeat, n_feat)
        self.up0 = nn.Sequential(nn.ConvTranspose2d(2 * n_feat, 2 * n_feat, height // 4, height // 4),
                                 nn.GroupNorm(8, 2 * n_feat), nn.ReLU())
        self.up1 = UnetUp(4 * n_feat, n_feat)
        self.up2 = UnetUp(2 * n_feat, n_feat)
        self.out = nn.Sequential(nn.Conv2d(2 * n_feat, n_feat, 3, 1, 1), nn.GroupNorm(8, n_feat), nn.ReLU(),
                                 nn.Conv2d(n_feat, in_channels, 3, 1, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x0 = self.init_conv(x)
        d1 = self.down1(x0)
        d2 = self.down2(d1)
        v = self.to_vec(d2)
        if c is None:
            c = torch.zeros(x.shape[0], self.n_cfeat, dtype=x.dtype)
        ce1 = self.contextembed1(c).view(-1, 2 * self.n_feat, 1, 1)
        te1 = self.timeembed1(t).view(-1, 2 * self.n_feat, 1, 1)
        ce2 = self.contextembed2(c).view(-1, self.n_feat, 1, 1)
        te2 = self.timeembed2(t).view(-1, self.n_feat, 1, 1)
        u1 = self.up0(v)
        u2 = self.up1(ce1 * u1 + te1, d2)
        u3 = self.up2(ce2 * u2 + te2, d1)
        return self.out(torch.cat((u3, x0), 1))


# MARK: needle UNet (ZOO.md §3)

class SinusoidalEmbedding(nn.Module):
    """[sin(t f_k), cos(t f_k)], f_k = exp(−ln(10^4) k/(half − 1)), t the raw 0-based integer step."""

    def __init__(self, dimension: int):
        super().__init__()
        self.dimension = dimension

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal_time_embedding(t, self.dimension)


class UnetBlock(nn.Module):
    """h = bnorm1(ReLU(conv1 x)) + ReLU(time_mlp τ); h = bnorm2(ReLU(conv2 h)); transform(h)."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int, up: bool = False):
        super().__init__()
        self.time_mlp = nn.Linear(time_dim, out_channels)
        if up:
            self.conv1 = nn.Conv2d(2 * in_channels, out_channels, 3, padding=1)
            self.transform = nn.ConvTranspose2d(out_channels, out_channels, 4, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
            self.transform = nn.MaxPool2d(2)  # (a Conv k4 s2 here gives the lineage's 62,438,883-parameter model)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bnorm1 = nn.BatchNorm2d(out_channels)
        self.bnorm2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        h = self.bnorm1(F.relu(self.conv1(x)))  # BN after the ReLU, as the seed
        h = h + F.relu(self.time_mlp(tau))[:, :, None, None]
        h = self.bnorm2(F.relu(self.conv2(h)))
        return self.transform(h)


class NeedleUNet(nn.Module):
    """ε̂ = net(x, t): x [N, C, H, W] with H, W divisible by 2^L; t int64 [N], the raw step."""

    def __init__(self, in_channels: int, channels: tuple = (64, 128, 256, 512, 1024), time_dim: int = 32):
        super().__init__()
        assert list(channels) == sorted(channels), "ZOO.md §3: the seed sorts the channels"
        self.channels, self.time_dim = tuple(channels), time_dim
        self.time_mlp = nn.Sequential(SinusoidalEmbedding(time_dim), nn.Linear(time_dim, time_dim), nn.ReLU())
        self.conv0 = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.downs = nn.ModuleList(UnetBlock(channels[i], channels[i + 1], time_dim) for i in range(len(channels) - 1))
        up = channels[::-1]
        self.ups = nn.ModuleList(UnetBlock(up[i], up[i + 1], time_dim, up=True) for i in range(len(up) - 1))
        self.output = nn.Conv2d(channels[0], in_channels, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tau = self.time_mlp(t)
        x = self.conv0(x)
        skips = []
        for down in self.downs:
            x = down(x, tau)
            skips.append(x)  # the pooled output is the skip
        for up in self.ups:
            x = up(torch.cat((x, skips.pop()), 1), tau)  # ups.0 therefore sees cat(x, x)
        return self.output(x)


# MARK: MyUNet (ZOO.md §4)

def sinusoidal_embedding(n: int, d: int) -> torch.Tensor:
    """The reference's fixed table [n, d]: w_j = float32(1 / 10000^(2j/d)) from Python floats, E[:, 0::2] =
    sin(t·w[0::2]), E[:, 1::2] = cos(t·w[0::2]), t int64 times float32 (so the frequencies are 10000^(−4i/d))."""
    wk = torch.tensor([1 / 10_000 ** (2 * j / d) for j in range(d)])
    wk = wk.reshape((1, d))
    t = torch.arange(n).reshape((n, 1))
    embedding = torch.zeros(n, d)
    embedding[:, ::2] = torch.sin(t * wk[:, ::2])
    embedding[:, 1::2] = torch.cos(t * wk[:, ::2])
    return embedding


class MyBlock(nn.Module):
    """SiLU(conv2(SiLU(conv1(ln(x) if normalize else x)))); ln LayerNorm(shape), convs 3x3 p1."""

    def __init__(self, shape: tuple, in_c: int, out_c: int, normalize: bool = True):
        super().__init__()
        self.ln = nn.LayerNorm(shape)
        self.conv1 = nn.Conv2d(in_c, out_c, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, 1, 1)
        self.activation = nn.SiLU()
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ln(x) if self.normalize else x
        out = self.activation(self.conv1(out))
        return self.activation(self.conv2(out))


class MyUNet(nn.Module):
    """ε̂ = net(x, t): x [N, C, 28, 28], t int64 [N] in 0..n_steps−1; time_embed frozen (requires_grad False)."""

    def __init__(self, in_channels: int = 1, n_steps: int = 1000, time_emb_dim: int = 100):
        super().__init__()
        c = in_channels
        self.time_embed = nn.Embedding(n_steps, time_emb_dim)
        self.time_embed.weight.data = sinusoidal_embedding(n_steps, time_emb_dim)
        self.time_embed.requires_grad_(False)

        def blocks(side: int, channels: tuple, normalize_last: bool = True) -> nn.Sequential:
            return nn.Sequential(*(MyBlock((channels[k], side, side), channels[k], channels[k + 1],
                                           normalize=k < 2 or normalize_last) for k in range(3)))

        self.te1 = self._make_te(time_emb_dim, c)
        self.b1 = blocks(28, (c, 10, 10, 10))
        self.down1 = nn.Conv2d(10, 10, 4, 2, 1)
        self.te2 = self._make_te(time_emb_dim, 10)
        self.b2 = blocks(14, (10, 20, 20, 20))
        self.down2 = nn.Conv2d(20, 20, 4, 2, 1)
        self.te3 = self._make_te(time_emb_dim, 20)
        self.b3 = blocks(7, (20, 40, 40, 40))
        self.down3 = nn.Sequential(nn.Conv2d(40, 40, 2, 1), nn.SiLU(), nn.Conv2d(40, 40, 4, 2, 1))
        self.te_mid = self._make_te(time_emb_dim, 40)
        self.b_mid = blocks(3, (40, 20, 20, 40))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(40, 40, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(40, 40, 2, 1))
        self.te4 = self._make_te(time_emb_dim, 80)
        self.b4 = blocks(7, (80, 40, 20, 20))
        self.up2 = nn.ConvTranspose2d(20, 20, 4, 2, 1)
        self.te5 = self._make_te(time_emb_dim, 40)
        self.b5 = blocks(14, (40, 20, 10, 10))
        self.up3 = nn.ConvTranspose2d(10, 10, 4, 2, 1)
        self.te_out = self._make_te(time_emb_dim, 20)
        self.b_out = blocks(28, (20, 10, 10, 10), normalize_last=False)
        self.conv_out = nn.Conv2d(10, c, 3, 1, 1)

    @staticmethod
    def _make_te(dim_in: int, dim_out: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(dim_in, dim_out), nn.SiLU(), nn.Linear(dim_out, dim_out))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = self.time_embed(t)
        n = len(x)
        out1 = self.b1(x + self.te1(t).reshape(n, -1, 1, 1))
        out2 = self.b2(self.down1(out1) + self.te2(t).reshape(n, -1, 1, 1))
        out3 = self.b3(self.down2(out2) + self.te3(t).reshape(n, -1, 1, 1))
        out_mid = self.b_mid(self.down3(out3) + self.te_mid(t).reshape(n, -1, 1, 1))
        out4 = torch.cat((out3, self.up1(out_mid)), dim=1)
        out4 = self.b4(out4 + self.te4(t).reshape(n, -1, 1, 1))
        out5 = torch.cat((out2, self.up2(out4)), dim=1)
        out5 = self.b5(out5 + self.te5(t).reshape(n, -1, 1, 1))
        out = torch.cat((out1, self.up3(out5)), dim=1)
        out = self.b_out(out + self.te_out(t).reshape(n, -1, 1, 1))
        return self.conv_out(out)
# MARK: DDIM residual U-Net (ZOO.md §5)

EMBEDDING_FREQUENCIES = 16  # keras.io's embedding_dims 32: 16 sines, 16 cosines
EMBEDDING_MAX_FREQUENCY = 1000.0


def noise_variance_embedding(noise_variance: torch.Tensor) -> torch.Tensor:
    """[N, 32, 1, 1]: sin(ω ν) then cos(ω ν), ω_k = 2π f_k, f_k = exp(linspace(ln 1, ln 1000, 16))_k.
    ω is worked out in float64 and rounded to float32 once; ω·ν is a float32 product (the Swift kernel
    rounds in the same places: at the top frequency the angle's float32 ulp is 5e-4)."""
    frequencies = torch.exp(torch.linspace(math.log(1.0), math.log(EMBEDDING_MAX_FREQUENCY), EMBEDDING_FREQUENCIES,
                                           dtype=torch.float64))
    angular_speeds = (2 * math.pi * frequencies).to(torch.float32).reshape(1, -1, 1, 1)
    angle = angular_speeds * noise_variance.to(torch.float32).reshape(-1, 1, 1, 1)
    return torch.cat((torch.sin(angle), torch.cos(angle)), 1)


class DDIMResidualBlock(nn.Module):
    """s = x if i == w else skip(x) (1x1); conv2(SiLU(conv1(norm(x)))) + s, norm = BatchNorm2d(i) without affine."""

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        if in_channels != width:
            self.skip = nn.Conv2d(in_channels, width, 1)
        else:
            self.skip = None
        # Keras BatchNormalization(center=False, scale=False): eps 1e-3, momentum 0.99 = PyTorch's 0.01
        self.norm = nn.BatchNorm2d(in_channels, eps=1e-3, momentum=0.01, affine=False)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x if self.skip is None else self.skip(x)
        return self.conv2(F.silu(self.conv1(self.norm(x)))) + s


class DDIMDownBlock(nn.Module):
    def __init__(self, in_channels: int, width: int, depth: int):
        super().__init__()
        self.residuals = nn.ModuleList(DDIMResidualBlock(in_channels if j == 0 else width, width) for j in range(depth))

    def forward(self, x: torch.Tensor, skips: list) -> torch.Tensor:
        for residual in self.residuals:
            x = residual(x)
            skips.append(x)
        return F.avg_pool2d(x, 2)


class DDIMUpBlock(nn.Module):
    def __init__(self, in_channels: int, width: int, depth: int):
        super().__init__()
        # residual 0 sees the upsampled map and the last skip; the others their predecessor's output and a skip
        self.residuals = nn.ModuleList(DDIMResidualBlock((in_channels if j == 0 else width) + width, width)
                                       for j in range(depth))

    def forward(self, x: torch.Tensor, skips: list) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        for residual in self.residuals:
            x = residual(torch.cat((x, skips.pop()), 1))
        return x


class DDIMUNet(nn.Module):
    """ε̂ = net(x, ν): x [N, C, H, W] with H, W divisible by 2^L; ν the noise variance, float [N] or [N, 1, 1, 1]."""

    def __init__(self, in_channels: int, widths: tuple = (32, 64, 96, 128), block_depth: int = 2):
        super().__init__()
        self.widths, self.block_depth = tuple(widths), block_depth
        self.input_conv = nn.Conv2d(in_channels, widths[0], 1)
        inputs = [widths[0] + 2 * EMBEDDING_FREQUENCIES] + list(widths[:-2])
        self.down_blocks = nn.ModuleList(DDIMDownBlock(i, w, block_depth) for i, w in zip(inputs, widths[:-1]))
        self.bottleneck = nn.ModuleList(DDIMResidualBlock(widths[-2] if j == 0 else widths[-1], widths[-1])
                                        for j in range(block_depth))
        ups = list(reversed(widths[:-1]))
        self.up_blocks = nn.ModuleList(DDIMUpBlock(i, w, block_depth) for i, w in zip([widths[-1]] + ups[:-1], ups))
        self.output_conv = nn.Conv2d(widths[0], in_channels, 1)
        nn.init.zeros_(self.output_conv.weight)  # keras.io: kernel_initializer="zeros" (and a zero bias)
        nn.init.zeros_(self.output_conv.bias)

    def forward(self, x: torch.Tensor, noise_variance: torch.Tensor) -> torch.Tensor:
        e = noise_variance_embedding(noise_variance).expand(-1, -1, x.shape[2], x.shape[3])  # nearest ×H, ×W of 1×1
        x = torch.cat((self.input_conv(x), e), 1)
        skips = []
        for down in self.down_blocks:
            x = down(x, skips)
        for residual in self.bottleneck:
            x = residual(x)
        for up in self.up_blocks:
            x = up(x, skips)
        return self.output_conv(x)


# MARK: Counts (ZOO.md §0)

def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def batchnorm_layers(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)]


def frozen_count(model: nn.Module) -> int:
    """Parameters with requires_grad False (MyUNet's embedding table)."""
    return sum(p.numel() for p in model.parameters() if not p.requires_grad)


def buffer_count(model: nn.Module) -> int:
    """running_mean + running_var floats (num_batches_tracked left out, as ZOO.md counts)."""
    return sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))


def macs_per_image(model: nn.Module, *inputs: torch.Tensor) -> int:
    """ZOO.md's MACs for one image: Conv2d Hout·Wout·Cout·Cin·k², ConvTranspose2d Hin·Win·Cin·Cout·k², Linear in·out."""
    total = 0

    def count(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        nonlocal total
        x = args[0]
        if isinstance(module, nn.ConvTranspose2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += x.shape[2] * x.shape[3] * module.in_channels * module.out_channels * k
        elif isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output.shape[2] * output.shape[3] * module.out_channels * module.in_channels // module.groups * k
        elif isinstance(module, nn.Linear):
            total += x.numel() // module.in_features * module.in_features * module.out_features

    # (ConvTranspose2d is no subclass of Conv2d: it is listed on its own)
    layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    try:
        model.eval()  # why: one image; train-mode BN would need a batch
        with torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    assert inputs[0].shape[0] == 1, "count one image"
    return total


def instances() -> list[tuple[str, nn.Module, tuple, dict]]:
    """ZOO.md §0's rows for these models: name, module, one image's inputs, the table's numbers."""
    def context(c: int, h: int, n_cfeat: int) -> tuple:
        return torch.randn(1, c, h, h), torch.tensor([0.5]), torch.zeros(1, n_cfeat)

    def needle(c: int, h: int) -> tuple:
        return torch.randn(1, c, h, h), torch.tensor([7])

    def ddim(c: int, h: int) -> tuple:
        return torch.randn(1, c, h, h), torch.tensor([0.5])

    return [
        ("context_unet", ContextUnet(3, 64, 5, 16), context(3, 16, 5),
         dict(params=1_481_027, buffers=2_816, bn=18, macs=150_660_224)),
        ("context_unet_fmnist", ContextUnet(1, 64, 10, 28), context(1, 28, 10),
         dict(params=2_020_225, buffers=2_816, bn=18, macs=459_404_352)),
        ("needle_unet", NeedleUNet(3), needle(3, 64),
         dict(params=40_154_723, buffers=11_520, bn=16, macs=4_655_246_336)),
        ("needle_unet_small", NeedleUNet(3, (32, 64, 128), 16), needle(3, 64),
         dict(params=596_787, buffers=1_152, bn=8, macs=584_848_128)),
        # ZOO.md §0's note: the seed notebook's size
        ("needle_unet_small@128", NeedleUNet(3, (32, 64, 128), 16), needle(3, 128),
         dict(params=596_787, buffers=1_152, bn=8, macs=2_339_377_920)),
        ("my_unet", MyUNet(1), (torch.randn(1, 1, 28, 28), torch.tensor([7])),
         dict(params=506_852, frozen=100_000, buffers=0, bn=0, macs=24_931_521)),
        ("ddim_unet", DDIMUNet(1), ddim(1, 64),
         dict(params=1_950_497, buffers=2_880, bn=14, macs=1_141_374_976)),
        ("ddim_unet_rgb", DDIMUNet(3), ddim(3, 64),
         dict(params=1_950_627, buffers=2_880, bn=14, macs=1_141_899_264)),
    ]


def main() -> int:
    torch.manual_seed(0)  # (only the MAC count's dummy inputs are drawn; the counts do not depend on them)
    failures = 0
    print(f"{'instance':24s} {'trainable':>12s} {'frozen':>8s} {'buffers':>8s} {'BN':>3s} {'MACs/image':>15s}")
    for name, model, inputs, table in instances():
        ours = dict(params=parameter_count(model), frozen=frozen_count(model), buffers=buffer_count(model),
                    bn=len(batchnorm_layers(model)), macs=macs_per_image(model, *inputs))
        table = dict(frozen=0) | table  # (a row without frozen has none)
        wrong = [f"{key} {ours[key]:,} != ZOO.md {table[key]:,}" for key in table if ours[key] != table[key]]
        failures += bool(wrong)
        print(f"{name:24s} {ours['params']:12,} {ours['frozen']:8,} {ours['buffers']:8,} {ours['bn']:3} {ours['macs']:15,}"
              + ("  MISMATCH: " + "; ".join(wrong) if wrong else "  = ZOO.md"))
    print("all counts equal ZOO.md §0" if not failures else f"{failures} instance(s) differ from ZOO.md §0")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
