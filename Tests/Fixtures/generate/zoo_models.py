#!/usr/bin/env python3
"""PyTorch's reference values for whole zoo models: writes Tests/Fixtures/zoo-models.h5.

Run by hand, never by the tests (see README.md beside this file):

    python zoo_models.py --out Tests/Fixtures/zoo-models.h5   # draw the inputs, compute, write
    python zoo_models.py --check Tests/Fixtures/zoo-models.h5 # recompute a file's outputs from its own inputs

Small instances of ContextUnet (ZOO.md §2), the needle UNet (ZOO.md §3) and the DDIM U-Net (ZOO.md §5), and
MyUNet (ZOO.md §4) at its only size, the modules of zoo_modules.py: every layer kind and code path of the big
instances, at a fraction of their size. Each group holds one train-mode forward and backward and the eval-mode
forward after it: params/ and buffers/ (the state_dict without num_batches_tracked), frozen/ (parameters with
requires_grad False), the inputs, y, gy, grads/ = d(sum(y * gy))/dparam, buffers_after/ and y_eval_after. Same layout, conventions and machinery as kernels.py (imported from it):
NCHW float32, one stream from torch.manual_seed(SEED) drawn group after group in the order of GROUPS,
1 thread.
"""
import sys
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

# why import: one writer, one checker and one set of conventions for all golden files.
from kernels import Arrays, KernelGroup, as_numpy, as_tensor, main, saved_state
from zoo_modules import ContextUnet, DDIMUNet, MyUNet, NeedleUNet, batchnorm_layers, buffer_count, frozen_count, parameter_count

GENERATOR = "Tests/Fixtures/generate/zoo_models.py"

# why not kernels.py's 1e-6: a whole model's bias gradient sums N·H·W terms of gradients of order 1–100,
# so the rounding noise of a true 0 reaches 4e-5 here (about 1e-6 of the BatchNorm bias gradient beside
# it), while every gradient that is not 0 has a largest magnitude over 0.1.
MODEL_NOISE_BOUND = 1e-3


def attribute(value) -> np.bytes_:
    # why fixed-length ASCII: IO's HDF5File.attribute reads only fixed-length strings (h5py would write a
    # Python str as a variable-length one), so a Swift test can read every attribute of these groups.
    return np.bytes_(str(value))


def perturb_norms(model: nn.Module) -> None:
    """Moves every norm's affine parameters and every BatchNorm's running stats off PyTorch's 1/0 defaults,
    so that a model which ignored one of them fails. Draws from the stream, in module order. (LayerNorm came
    with MyUNet: the groups before it have none, so their draws are unchanged.)"""
    with torch.no_grad():
        for module in model.modules():
            # (affine=False norms have no weight: skipping them draws nothing, so earlier groups are unchanged)
            if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) and module.weight is not None:
                module.weight.copy_(1 + 0.1 * torch.randn_like(module.weight))
                module.bias.copy_(0.1 * torch.randn_like(module.bias))
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(0.1 * torch.randn_like(module.running_mean))
                module.running_var.copy_(0.5 + torch.rand_like(module.running_var))  # positive, away from 1


def biases_removed_by_a_norm(model: nn.Module) -> list[str]:
    """The biases of the convolutions whose output goes straight into a norm of each channel alone: BatchNorm,
    or a GroupNorm of one channel per group (context_unet_28's out.1, GroupNorm(8, 8)). The norm subtracts the
    channel's mean, so the bias's gradient is exactly 0 and PyTorch's value only rounding noise."""
    names = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue  # (in these models a conv feeds a norm only inside a Sequential)
        children = list(module.named_children())
        for (name, layer), (_, after) in zip(children, children[1:]):
            per_channel = isinstance(after, nn.BatchNorm2d) or (
                isinstance(after, nn.GroupNorm) and after.num_groups == after.num_channels)
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and layer.bias is not None and per_channel:
                names.append(f"{prefix}.{name}.bias")
    return names


def model_group(name: str, configuration: dict, build: Callable[[], nn.Module], shape: tuple,
                draw_conditioning: Callable[[], dict[str, torch.Tensor]], forward_inputs: list[str],
                perturb: Callable[[nn.Module], None] = perturb_norms) -> KernelGroup:
    """One whole-model group. `draw_conditioning` gives the inputs besides x (t, and labels and c);
    `forward_inputs` names the model's forward arguments in order; `perturb` moves the drawn parameters
    and buffers off their initial values (by default the norms')."""
    reference = build()  # only for names and counts (drawn before GROUPS' stream starts)
    bn_names = batchnorm_layers(reference)
    attributes = {key: attribute(value) for key, value in configuration.items()}
    if frozen_count(reference):  # (only where there is one: the earlier groups' attributes stay as they were)
        attributes["frozen_count"] = attribute(frozen_count(reference))
    attributes |= {"parameter_count": attribute(parameter_count(reference)),
                   "buffer_count": attribute(buffer_count(reference)),
                   "batchnorm_layers": attribute(len(bn_names)),
                   "batchnorm_layer_names": attribute(",".join(bn_names)),
                   "op": attribute("train-mode forward y = model(" + ", ".join(forward_inputs) + "), backward of "
                                   "sum(y*gy); then the eval-mode forward y_eval_after with buffers_after")}

    def draw() -> dict[str, torch.Tensor]:
        model = build()  # PyTorch's default initialisation, from the common stream
        perturb(model)
        state = saved_state(model)
        inputs = {f"params/{n}": p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        inputs |= {f"frozen/{n}": p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
        inputs |= {f"buffers/{n}": state[n].clone() for n in state
                   if f"params/{n}" not in inputs and f"frozen/{n}" not in inputs}
        inputs["x"] = torch.randn(*shape)
        inputs |= draw_conditioning()
        inputs["gy"] = torch.randn(*shape)  # ε̂ has the shape of x
        return inputs

    def compute(inputs: Arrays) -> Arrays:
        # why fork_rng: building the module draws a default initialisation, which must not move the stream
        # the next group draws its inputs from.
        with torch.random.fork_rng(devices=[]):
            model = build()
        with torch.no_grad():
            for n, value in saved_state(model).items():
                prefix = next(p for p in ("params", "frozen", "buffers") if f"{p}/{n}" in inputs)
                value.copy_(as_tensor(inputs[f"{prefix}/{n}"]))
        arguments = [torch.from_numpy(inputs[n]) for n in forward_inputs]

        model.train()
        y = model(*arguments)
        y.backward(as_tensor(inputs["gy"]))  # the gradient of sum(y * gy)
        outputs = {"y": as_numpy(y)}
        # (a parameter the forward never reads, MyUNet's b_out.2.ln, has no .grad: its gradient is 0)
        outputs |= {f"grads/{n}": as_numpy(p.grad) if p.grad is not None else np.zeros(tuple(p.shape), np.float32)
                    for n, p in model.named_parameters() if p.requires_grad}
        outputs |= {f"buffers_after/{n}": as_numpy(value) for n, value in saved_state(model).items()
                    if "running_" in n}
        model.eval()
        with torch.no_grad():
            outputs["y_eval_after"] = as_numpy(model(*arguments))
        return outputs

    input_names = ["x", "gy"] + [n for n in draw_conditioning()]
    return KernelGroup(
        name, attributes, draw, compute,
        input_names=lambda group: input_names + [f"params/{n}" for n in group["params"]]
                                              + [f"frozen/{n}" for n in group.get("frozen", [])]
                                              + [f"buffers/{n}" for n in group.get("buffers", [])],
        true_zeros={f"grads/{n}" for n in biases_removed_by_a_norm(reference) + unused_parameters(reference)
                    + shifts_removed_by_a_layernorm(reference)},
        noise_bound=MODEL_NOISE_BOUND)


def shifts_removed_by_a_layernorm(model: nn.Module) -> list[str]:
    """MyUNet on one channel: te1 adds one value per image, and b1.0's LayerNorm over the whole image subtracts
    it again, so te1's gradient is exactly 0 (PyTorch's value is rounding noise of order 1e-9)."""
    if isinstance(model, MyUNet) and model.b1[0].ln.normalized_shape[0] == 1:
        return [f"te1.{layer}.{n}" for layer in (0, 2) for n in ("weight", "bias")]
    return []


def unused_parameters(model: nn.Module) -> list[str]:
    """Trainable parameters the forward never reads (MyUNet's b_out.2.ln, normalize=False): gradient exactly 0."""
    return [f"{prefix}.ln.{n}" for prefix, module in model.named_modules()
            if getattr(module, "normalize", True) is False for n in ("weight", "bias")]


# MARK: ContextUnet (ZOO.md §2)

CONTEXT_T = 500  # the course's T: t = step/T


def context_unet_group(name: str, in_channels: int, n_feat: int, n_cfeat: int, height: int,
                       steps: list[int], labels: list[int]) -> KernelGroup:
    def conditioning() -> dict[str, torch.Tensor]:
        # Chosen, not drawn: early, middle and last steps; a label of -1 is a zero row of c (unconditional).
        step = torch.tensor(steps, dtype=torch.int64)
        label = torch.tensor(labels, dtype=torch.int64)
        c = torch.zeros(len(labels), n_cfeat)
        for row, value in enumerate(labels):
            if value >= 0:
                c[row, value] = 1
        return {"steps": step, "t": step.to(torch.float32) / CONTEXT_T, "labels": label, "c": c}

    return model_group(
        name, {"model": "ContextUnet", "in_channels": in_channels, "n_feat": n_feat, "n_cfeat": n_cfeat,
               "height": height, "T": CONTEXT_T},
        lambda: ContextUnet(in_channels, n_feat, n_cfeat, height), (len(labels), in_channels, height, height),
        conditioning, ["x", "t", "c"])


# MARK: needle UNet (ZOO.md §3)

NEEDLE_T = 300  # the seed's T: t is the raw step in 0..T-1


def needle_unet_group(name: str, in_channels: int, channels: tuple, time_dim: int, height: int,
                      steps: list[int]) -> KernelGroup:
    return model_group(
        name, {"model": "NeedleUNet", "in_channels": in_channels, "channels": ",".join(map(str, channels)),
               "time_dim": time_dim, "height": height, "T": NEEDLE_T},
        lambda: NeedleUNet(in_channels, channels, time_dim), (len(steps), in_channels, height, height),
        # Chosen, not drawn: the first, a middle and the last step.
        lambda: {"t": torch.tensor(steps, dtype=torch.int64)}, ["x", "t"])


# MARK: MyUNet (ZOO.md §4)

MY_UNET_T = 1000  # the table's rows: t is the raw step in 0..T-1


def my_unet_group(name: str, in_channels: int, steps: list[int]) -> KernelGroup:
    return model_group(
        name, {"model": "MyUNet", "in_channels": in_channels, "height": 28, "T": MY_UNET_T, "time_dim": 100},
        lambda: MyUNet(in_channels, MY_UNET_T, 100), (len(steps), in_channels, 28, 28),
        # Chosen, not drawn: the first, a middle and the last row of the table.
        lambda: {"t": torch.tensor(steps, dtype=torch.int64)}, ["x", "t"])
# MARK: DDIM residual U-Net (ZOO.md §5)

def perturb_ddim(model: nn.Module) -> None:
    """The norms' running stats as perturb_norms moves them, then output_conv from its zero initialisation to
    PyTorch's default U(±1/√fan_in): with a zero output_conv every gradient but its own would be 0."""
    perturb_norms(model)
    model.output_conv.reset_parameters()


def ddim_unet_group(name: str, in_channels: int, widths: tuple, block_depth: int, height: int,
                    noise_variances: list[float]) -> KernelGroup:
    return model_group(
        name, {"model": "DDIMUNet", "in_channels": in_channels, "widths": ",".join(map(str, widths)),
               "block_depth": block_depth, "height": height},
        lambda: DDIMUNet(in_channels, widths, block_depth), (len(noise_variances), in_channels, height, height),
        # Chosen, not drawn: ν at the continuous cosine schedule's ends (0.0975 = 1 − 0.95², 0.9996 = 1 − 0.02²),
        # and one between.
        lambda: {"noise_variance": torch.tensor(noise_variances, dtype=torch.float32)}, ["x", "noise_variance"],
        perturb=perturb_ddim)


# The order in which the groups draw from the stream: append new groups at the end.
GROUPS = [
    context_unet_group("context_unet", 3, 16, 5, 16, steps=[17, 250, 499], labels=[2, -1, 4]),
    # 28×28: AvgPool2d(7) and up0's ConvTranspose2d k = s = 7
    context_unet_group("context_unet_28", 1, 8, 10, 28, steps=[1, 333], labels=[7, -1]),
    needle_unet_group("needle_unet", 3, (8, 16, 32), 16, 16, steps=[0, 150, 299]),
    my_unet_group("my_unet", 1, steps=[0, 500, 999]),
    ddim_unet_group("ddim_unet", 1, (8, 16, 24, 32), 2, 16, noise_variances=[0.0975, 0.5, 0.9996]),
]


if __name__ == "__main__":
    sys.exit(main(GROUPS, GENERATOR, __doc__))
