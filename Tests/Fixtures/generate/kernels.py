#!/usr/bin/env python3
"""PyTorch's reference values for the kernel and tiny-U-Net tests: writes Tests/Fixtures/kernels.h5.

Run by hand, never by the tests (see README.md beside this file):

    python kernels.py --out Tests/Fixtures/kernels.h5   # draw the inputs, compute, write
    python kernels.py --check Tests/Fixtures/kernels.h5 # recompute a file's outputs from its own inputs

Layout: one HDF5 group per kernel, NCHW float32 (the schedules float64, timesteps int64), parameter
names as PyTorch's state_dict keys. Every gradient grad_X is d(sum(y * gy))/dX for the stored gy.

All inputs come from one stream, torch.manual_seed(SEED), drawn group after group in the order of
GROUPS below (the tiny U-Net's default initialisation included), so adding a group at the end leaves
every earlier group's inputs as they were.
"""
import argparse
import math
import sys
from dataclasses import dataclass, field
from typing import Callable

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 0
# why: a fixed reduction order, so that the file does not depend on the machine's core count.
torch.set_num_threads(1)

CONVENTION = "NCHW float32; grad_X = d(sum(y*gy))/dX; PyTorch semantics"
GENERATOR = "Tests/Fixtures/generate/kernels.py"

# --check fails a dataset whose max |ours - file| exceeds this fraction of the file's max |value|.
RELATIVE_TOLERANCE = 1e-5
# A dataset whose true value is 0 holds only rounding noise, in the file and here alike: --check asks
# both to stay below this (a group may set its own noise_bound), not to agree.
ROUNDING_NOISE_BOUND = 1e-6

Arrays = dict[str, np.ndarray]


def as_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def as_tensor(array: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(array, requires_grad=requires_grad)


@dataclass
class KernelGroup:
    """One HDF5 group: how to draw its inputs, and how PyTorch turns them into the stored outputs."""
    name: str
    attributes: dict[str, str]
    draw_inputs: Callable[[], dict[str, torch.Tensor]]
    compute_outputs: Callable[[Arrays], Arrays]
    # The datasets --check reads back as inputs (relative to the group); None: all that draw_inputs returns.
    input_names: Callable[[h5py.Group], list[str]] | None = field(default=None)
    # Outputs whose exact value is 0 (relative to the group), so that only their smallness can be checked.
    true_zeros: set[str] = field(default_factory=set)
    # How small the true zeros' rounding noise must stay, in the file and here alike (whole models sum more terms).
    noise_bound: float = ROUNDING_NOISE_BOUND


# MARK: Convolution and linear layers

def draw_layer_inputs(input_shape: tuple, weight_shape: tuple, output_shape: tuple) -> dict[str, torch.Tensor]:
    # why the 0.3: weights of the order of a trained layer's, so outputs stay of order 1.
    return {"x": torch.randn(*input_shape), "weight": torch.randn(*weight_shape) * 0.3,
            "bias": torch.randn(weight_shape[0]), "gy": torch.randn(*output_shape)}


def layer_outputs(inputs: Arrays, forward: Callable) -> Arrays:
    x, weight, bias = (as_tensor(inputs[k], requires_grad=True) for k in ("x", "weight", "bias"))
    y = forward(x, weight, bias)
    y.backward(as_tensor(inputs["gy"]))
    return {"y": as_numpy(y), "grad_x": as_numpy(x.grad), "grad_weight": as_numpy(weight.grad),
            "grad_bias": as_numpy(bias.grad)}


def conv3x3_group() -> KernelGroup:
    return KernelGroup(
        "conv3x3", {"op": "Conv2d(k=3, stride=1, padding=1, bias)"},
        lambda: draw_layer_inputs((2, 3, 5, 6), (4, 3, 3, 3), (2, 4, 5, 6)),
        lambda inputs: layer_outputs(inputs, lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1)))


def conv1x1_group() -> KernelGroup:
    return KernelGroup(
        "conv1x1", {"op": "Conv2d(k=1, bias)"},
        lambda: draw_layer_inputs((2, 5, 4, 4), (3, 5, 1, 1), (2, 3, 4, 4)),
        lambda inputs: layer_outputs(inputs, lambda x, w, b: F.conv2d(x, w, b)))


def linear_group() -> KernelGroup:
    return KernelGroup(
        "linear", {"op": "Linear, weight [out,in]"},
        lambda: draw_layer_inputs((3, 7), (5, 7), (3, 5)),
        lambda inputs: layer_outputs(inputs, F.linear))


# MARK: BatchNorm

def batchnorm_train_group() -> KernelGroup:
    def draw() -> dict[str, torch.Tensor]:
        weight, bias = torch.randn(4), torch.randn(4)
        # why the scale and shift: a batch whose mean and variance are far from the running stats' 0/1.
        x = torch.randn(3, 4, 3, 5) * 2 + 1
        return {"weight": weight, "bias": bias, "x": x, "gy": torch.randn(3, 4, 3, 5)}

    def compute(inputs: Arrays) -> Arrays:
        bn = nn.BatchNorm2d(4, eps=1e-5, momentum=0.1)  # running stats start at 0 and 1
        with torch.no_grad():
            bn.weight.copy_(as_tensor(inputs["weight"]))
            bn.bias.copy_(as_tensor(inputs["bias"]))
        bn.train()
        x = as_tensor(inputs["x"], requires_grad=True)
        y = bn(x)
        y.backward(as_tensor(inputs["gy"]))
        return {"y": as_numpy(y), "running_mean_after": as_numpy(bn.running_mean),
                "running_var_after": as_numpy(bn.running_var), "grad_x": as_numpy(x.grad),
                "grad_weight": as_numpy(bn.weight.grad), "grad_bias": as_numpy(bn.bias.grad)}

    return KernelGroup(
        "batchnorm_train",
        {"op": "BatchNorm2d train mode, eps 1e-5, momentum 0.1; running stats start at 0/1",
         "note": "running_var uses the unbiased batch variance"},
        draw, compute)


def batchnorm_eval_group() -> KernelGroup:
    def draw() -> dict[str, torch.Tensor]:
        running_mean = torch.randn(4)
        running_var = torch.rand(4) + 0.5  # positive, away from 0
        return {"running_mean": running_mean, "running_var": running_var, "x": torch.randn(2, 4, 3, 3),
                "weight": torch.randn(4), "bias": torch.randn(4), "gy": torch.randn(2, 4, 3, 3)}

    def compute(inputs: Arrays) -> Arrays:
        bn = nn.BatchNorm2d(4, eps=1e-5, momentum=0.1)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(as_tensor(inputs[name]))
        bn.eval()
        x = as_tensor(inputs["x"], requires_grad=True)
        y = bn(x)
        y.backward(as_tensor(inputs["gy"]))
        return {"y": as_numpy(y), "grad_x": as_numpy(x.grad), "grad_weight": as_numpy(bn.weight.grad),
                "grad_bias": as_numpy(bn.bias.grad)}

    return KernelGroup("batchnorm_eval", {"op": "BatchNorm2d eval mode with given running stats"}, draw, compute)


# MARK: Element-wise, pooling, resampling, loss

def unary_outputs(inputs: Arrays, forward: Callable) -> Arrays:
    x = as_tensor(inputs["x"], requires_grad=True)
    y = forward(x)
    y.backward(as_tensor(inputs["gy"]))
    return {"y": as_numpy(y), "grad_x": as_numpy(x.grad)}


def relu_group() -> KernelGroup:
    # The committed file has no attribute on this group; none is added, so the structures stay equal.
    return KernelGroup(
        "relu", {},
        lambda: {"x": torch.randn(2, 3, 4, 4), "gy": torch.randn(2, 3, 4, 4)},
        lambda inputs: unary_outputs(inputs, F.relu))


def maxpool2_group() -> KernelGroup:
    def draw() -> dict[str, torch.Tensor]:
        x, gy = torch.randn(2, 3, 6, 4), torch.randn(2, 3, 3, 2)
        # why: random values never tie, and the tie rule (the gradient goes to the first maximum in
        # row-major window order) is what the test must pin down. A four-way tie in one window, and a
        # window whose top row holds two equal maxima above two equal smaller values.
        x[0, 0, 0:2, 0:2] = 1.5
        x[1, 2, 2, 0:2] = 0.7
        x[1, 2, 3, 0:2] = -1.0
        return {"x": x, "gy": gy}

    return KernelGroup(
        "maxpool2",
        {"op": "MaxPool2d(2); includes exact ties (gradient goes to the first maximum in row-major window order)"},
        draw, lambda inputs: unary_outputs(inputs, lambda x: F.max_pool2d(x, 2)))


def upsample_group() -> KernelGroup:
    upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    return KernelGroup(
        "upsample_bilinear_ac", {"op": "Upsample(scale_factor=2, mode='bilinear', align_corners=True)"},
        lambda: {"x": torch.randn(2, 3, 3, 4), "gy": torch.randn(2, 3, 6, 8)},
        lambda inputs: unary_outputs(inputs, upsample))


def mse_group() -> KernelGroup:
    def compute(inputs: Arrays) -> Arrays:
        prediction = as_tensor(inputs["pred"], requires_grad=True)
        loss = F.mse_loss(prediction, as_tensor(inputs["target"]))
        loss.backward()  # gy = 1
        return {"y": as_numpy(loss), "grad_pred": as_numpy(prediction.grad)}

    return KernelGroup(
        "mse", {"op": "mean((pred - target)^2) over all elements; y is a scalar, gy = 1"},
        lambda: {"pred": torch.randn(2, 1, 4, 4), "target": torch.randn(2, 1, 4, 4)}, compute)


# MARK: Time embedding and noise schedules

TIME_EMBEDDING_DIMENSION = 128


def sinusoidal_time_embedding(timesteps: torch.Tensor, dimension: int = TIME_EMBEDDING_DIMENSION) -> torch.Tensor:
    """[sin(t f_k), cos(t f_k)], f_k = exp(-ln(10^4) k / (half - 1)), with the raw integer t."""
    half = dimension // 2
    k = torch.arange(half, dtype=torch.float32)
    # why this order, in float32: multiply k by -ln(10^4) first, then divide by 63. The Swift test replays
    # exactly this rounding; k * (-ln(10^4) / 63) moves some f_k by several ulp, magnified by t = 999.
    frequencies = torch.exp(k * -math.log(10000.0) / (half - 1))
    angles = timesteps.to(torch.float32)[:, None] * frequencies[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def time_embedding_group() -> KernelGroup:
    # The timesteps are chosen, not drawn: both ends of the range, small angles and a large one.
    return KernelGroup(
        "time_embedding", {"op": "sinusoidal, d=128, [sin(t f), cos(t f)], f_k = exp(-ln(1e4) k/63)"},
        lambda: {"t": torch.tensor([0, 1, 7, 500, 999], dtype=torch.int64)},
        lambda inputs: {"y": as_numpy(sinusoidal_time_embedding(torch.from_numpy(inputs["t"])))})


TIMESTEPS = 1000


def linear_betas(timesteps: int = TIMESTEPS) -> torch.Tensor:
    return torch.linspace(1e-4, 0.02, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int = TIMESTEPS, s: float = 0.008) -> torch.Tensor:
    """Improved DDPM: beta_t = 1 - f((t+1)/T) / f(t/T), f(u) = cos((u + s)/(1 + s) * pi/2)^2, clipped at 0.999."""
    u = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return torch.clamp(1 - f[1:] / f[:-1], max=0.999)


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1 - betas, dim=0)


def schedule_group(name: str, op: str, betas: Callable[[], torch.Tensor]) -> KernelGroup:
    def compute(_: Arrays) -> Arrays:
        beta = betas()
        return {"beta": as_numpy(beta), "alpha_bar": as_numpy(alpha_bars(beta))}
    return KernelGroup(name, {"op": op}, lambda: {}, compute)


def schedule_linear_group() -> KernelGroup:
    return schedule_group(
        "schedule_linear", "T=1000, beta = linspace(1e-4, 0.02, 1000) in float64, alpha_bar = cumprod(1-beta)",
        linear_betas)


def schedule_cosine_group() -> KernelGroup:
    return schedule_group("schedule_cosine", "improved-DDPM cosine, s=0.008, beta clipped at 0.999", cosine_betas)


# MARK: The tiny U-Net (SPEC.md §1)

class Block(nn.Module):
    """conv3x3 → BN → ReLU, + time_mlp(emb), conv3x3 → BN → ReLU (DownBlock and UpBlock alike)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        # why this order of construction: it is the order in which the default initialisation draws.
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.time_mlp = nn.Linear(TIME_EMBEDDING_DIMENSION, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = h + self.time_mlp(embedding)[:, :, None, None]
        return F.relu(self.bn2(self.conv2(h)))


class UNet(nn.Module):
    """init_conv, down1..downD (each followed by MaxPool2d(2)), bottleneck, up_block1..up_blockD (each after a
    bilinear ×2 upsample with align_corners=True, on concat[x, skip]), out_conv 1×1. Channels C_i = base·2^i."""

    def __init__(self, base: int, depth: int, in_channels: int):
        super().__init__()
        self.depth = depth
        channels = [base * 2 ** i for i in range(depth + 1)]
        self.init_conv = nn.Conv2d(in_channels, base, 3, padding=1)
        for i in range(1, depth + 1):
            setattr(self, f"down{i}", Block(channels[i - 1], channels[i]))
        self.bottleneck = Block(channels[depth], channels[depth])
        for i in range(depth, 0, -1):
            setattr(self, f"up_block{depth - i + 1}", Block(2 * channels[i], channels[i - 1]))
        self.out_conv = nn.Conv2d(base, in_channels, 1)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        embedding = sinusoidal_time_embedding(timesteps)
        x = self.init_conv(x)
        skips = []
        for i in range(1, self.depth + 1):
            x = getattr(self, f"down{i}")(x, embedding)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x, embedding)
        for i in range(self.depth, 0, -1):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            x = getattr(self, f"up_block{self.depth - i + 1}")(torch.cat([x, skips[i - 1]], dim=1), embedding)
        return self.out_conv(x)


def saved_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict without num_batches_tracked (the project keeps no such counter; momentum is fixed)."""
    return {name: value for name, value in model.state_dict().items() if not name.endswith("num_batches_tracked")}


def tiny_unet_group() -> KernelGroup:
    base, depth, in_channels, size, batch = 4, 2, 1, 16, 3

    def draw() -> dict[str, torch.Tensor]:
        model = UNet(base, depth, in_channels)  # PyTorch's default initialisation, from the common stream
        inputs = {f"params/{name}": value for name, value in saved_state(model).items()}
        inputs["x0"] = torch.rand(batch, in_channels, size, size) * 2 - 1  # an image in [-1, 1]
        inputs["eps"] = torch.randn(batch, in_channels, size, size)
        inputs["t"] = torch.tensor([3, 420, 999], dtype=torch.int64)  # early, middle and the last timestep
        return inputs

    def compute(inputs: Arrays) -> Arrays:
        model = UNet(base, depth, in_channels)
        with torch.no_grad():
            for name, value in saved_state(model).items():
                value.copy_(as_tensor(inputs[f"params/{name}"]))
        t = torch.from_numpy(inputs["t"])
        x0, eps = as_tensor(inputs["x0"]), as_tensor(inputs["eps"])
        alpha_bar = alpha_bars(linear_betas())[t].to(torch.float32)[:, None, None, None]
        x_t = torch.sqrt(alpha_bar) * x0 + torch.sqrt(1 - alpha_bar) * eps
        outputs = {"x_t": as_numpy(x_t)}
        # why: --check runs the model on the file's own x_t (what the Swift test feeds it), so that a
        # last-place difference in x_t (the committed file's is within 1 ulp of this one) does not blur
        # the comparison of the gradients.
        if "x_t" in inputs:
            x_t = as_tensor(inputs["x_t"])

        model.train()
        loss = F.mse_loss(model(x_t, t), eps)
        loss.backward()
        outputs["loss"] = as_numpy(loss)
        outputs |= {f"grads/{name}": as_numpy(p.grad) for name, p in model.named_parameters()}
        outputs |= {f"buffers_after/{name}": as_numpy(value) for name, value in saved_state(model).items()
                    if "running_" in name}
        model.eval()
        with torch.no_grad():
            outputs["eval_output_after"] = as_numpy(model(x_t, t))
        return outputs

    return KernelGroup(
        "tiny_unet",
        {"op": "UNet base 4, depth 2, in_channels 1, 16x16; loss = mse(model(x_t, t), eps), "
               "x_t = sqrt(ab[t]) x0 + sqrt(1-ab[t]) eps with the linear schedule; BatchNorm in train mode",
         "eval_output_after": "eval-mode output on x_t, t with the running stats after that one train-mode step"},
        draw, compute,
        input_names=lambda group: ["x0", "eps", "t", "x_t"] + [f"params/{name}" for name in group["params"]],
        # why: a convolution's bias right before BatchNorm has a gradient of exactly 0 (BN removes the mean);
        # PyTorch's value there is rounding noise of order 1e-8.
        true_zeros={f"grads/{block}.{conv}.bias" for block in ("down1", "down2", "bottleneck", "up_block1", "up_block2")
                    for conv in ("conv1", "conv2")})


# The order in which the groups draw from the stream: append new groups at the end.
GROUPS = [conv3x3_group(), conv1x1_group(), linear_group(), batchnorm_train_group(), batchnorm_eval_group(),
          relu_group(), maxpool2_group(), upsample_group(), mse_group(), time_embedding_group(),
          schedule_linear_group(), schedule_cosine_group(), tiny_unet_group()]


# MARK: Writing and checking

def generate(path: str, groups: list[KernelGroup] = GROUPS, generator: str = GENERATOR) -> None:
    """Writes `groups` to `path`, drawn in order from torch.manual_seed(SEED) (zoo_kernels.py passes its own)."""
    torch.manual_seed(SEED)
    with h5py.File(path, "w") as file:
        file.attrs["convention"] = CONVENTION
        file.attrs["source"] = f"torch {torch.__version__}, {generator}"
        for group in groups:
            inputs = {name: as_numpy(value) for name, value in group.draw_inputs().items()}
            outputs = group.compute_outputs(inputs)
            h5group = file.create_group(group.name)
            for key, value in group.attributes.items():
                h5group.attrs[key] = value
            for name, value in sorted((inputs | outputs).items()):
                h5group.create_dataset(name, data=value)
    print(f"wrote {path} (torch {torch.__version__}, seed {SEED})")


def dataset_paths(group: h5py.Group) -> set[str]:
    paths = set()
    group.visititems(lambda name, item: paths.add(name) if isinstance(item, h5py.Dataset) else None)
    return paths


def check(path: str, groups: list[KernelGroup] = GROUPS) -> bool:
    """Recompute every output from the inputs stored in `path`; print the differences; True if all are within tolerance."""
    ok = True
    problems = []
    print(f"{'dataset':48s} {'max |diff|':>11s} {'max |value|':>11s} {'relative':>10s}")
    with h5py.File(path, "r") as file:
        for group in groups:
            if group.name not in file:
                problems.append(f"{group.name}: missing group")
                continue
            h5group = file[group.name]
            if dict(h5group.attrs) != group.attributes:
                problems.append(f"{group.name}: attributes {dict(h5group.attrs)} != {group.attributes}")
            # (drawing only for the names: a check writes nothing, so the stream it moves does not matter)
            names = group.input_names(h5group) if group.input_names else list(group.draw_inputs().keys())
            missing = [name for name in names if name not in h5group]
            if missing:
                problems.append(f"{group.name}: inputs missing, group not recomputed: {missing}")
                continue
            inputs = {name: h5group[name][()] for name in names}
            outputs = group.compute_outputs(inputs)
            stored = dataset_paths(h5group)
            if not group.true_zeros <= set(outputs):
                problems.append(f"{group.name}: true_zeros names no output: {sorted(group.true_zeros - set(outputs))}")
            if stored != set(inputs) | set(outputs):
                problems.append(f"{group.name}: datasets differ: only in file {sorted(stored - set(inputs) - set(outputs))},"
                                f" only in the recipe {sorted((set(inputs) | set(outputs)) - stored)}")
            for name, ours in sorted(outputs.items()):
                if name not in stored:
                    continue  # (reported above as a structure difference)
                theirs = h5group[name]
                if theirs.shape != ours.shape or theirs.dtype != ours.dtype:
                    problems.append(f"{group.name}/{name}: file {theirs.shape} {theirs.dtype}, recipe {ours.shape} {ours.dtype}")
                    continue
                theirs = theirs[()].astype(np.float64)
                difference = float(np.max(np.abs(ours.astype(np.float64) - theirs)))
                magnitude = float(np.max(np.abs(theirs)))
                relative = difference / magnitude if magnitude > 0 else difference
                if name in group.true_zeros:
                    passed = max(magnitude, float(np.max(np.abs(ours)))) <= group.noise_bound
                    note = f"  true value 0: both below {group.noise_bound:g}" if passed else "  FAIL (not noise)"
                else:
                    passed = relative <= RELATIVE_TOLERANCE
                    note = ("  exact" if difference == 0 else "") if passed else "  FAIL"
                ok &= passed
                print(f"{group.name + '/' + name:48s} {difference:11.3e} {magnitude:11.3e} {relative:10.2e}{note}")
        if file.attrs.get("convention") != CONVENTION:
            problems.append(f"root attribute convention: {file.attrs.get('convention')!r}")
        extra_groups = set(file) - {group.name for group in groups}
        if extra_groups:
            problems.append(f"groups the recipe does not make: {sorted(extra_groups)}")
    for problem in problems:
        print("STRUCTURE:", problem)
    return ok and not problems


def main(groups: list[KernelGroup] = GROUPS, generator: str = GENERATOR, description: str = __doc__) -> int:
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", help="write a new golden file here (drawn from the fixed seed)")
    action.add_argument("--check", metavar="FILE",
                        help="recompute FILE's outputs from FILE's inputs; exit 1 if any differs by more than "
                             f"{RELATIVE_TOLERANCE:g} of its dataset's largest magnitude, or the structure differs")
    arguments = parser.parse_args()
    if arguments.out:
        generate(arguments.out, groups, generator)
        return 0
    passed = check(arguments.check, groups)
    print("check passed" if passed else "check FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
