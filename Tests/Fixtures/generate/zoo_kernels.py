#!/usr/bin/env python3
"""PyTorch's reference values for the kernels the model zoo adds: writes Tests/Fixtures/zoo-kernels.h5.

Run by hand, never by the tests (see README.md beside this file):

    python zoo_kernels.py --out Tests/Fixtures/zoo-kernels.h5   # draw the inputs, compute, write
    python zoo_kernels.py --check Tests/Fixtures/zoo-kernels.h5 # recompute a file's outputs from its own inputs

The layer kinds of /work/shared/ZOO.md §1: GroupNorm (also followed by ReLU), LayerNorm((C,H,W)), exact
GELU, SiLU, the strided and unpadded convolutions, the transposed convolutions, bilinear ×2 with
align_corners=False and AvgPool2d(k). Same layout, conventions and machinery as kernels.py (imported
from it): one HDF5 group per kernel, NCHW float32, grad_X = d(sum(y * gy))/dX for the stored gy, one
stream from torch.manual_seed(SEED) drawn group after group in the order of GROUPS, 1 thread.
"""
import sys

import torch
import torch.nn.functional as F

# why import: one writer, one checker and one set of conventions for both golden files; kernels.py's
# module level only defines things (and sets torch to 1 thread), so importing it draws nothing.
from kernels import KernelGroup, layer_outputs, main, unary_outputs

GENERATOR = "Tests/Fixtures/generate/zoo_kernels.py"


# MARK: Normalisation

def draw_norm_inputs(input_shape: tuple, affine_shape: tuple) -> dict[str, torch.Tensor]:
    # why the scale and shift: statistics far from 0/1, so a kernel that skipped the normalisation fails.
    return {"x": torch.randn(*input_shape) * 2 + 1, "weight": torch.randn(*affine_shape),
            "bias": torch.randn(*affine_shape), "gy": torch.randn(*input_shape)}


def groupnorm_group() -> KernelGroup:
    return KernelGroup(
        "groupnorm", {"op": "F.group_norm(x, 8, weight, bias, eps=1e-5); C=16, N=2, 6x6"},
        lambda: draw_norm_inputs((2, 16, 6, 6), (16,)),
        lambda inputs: layer_outputs(inputs, lambda x, w, b: F.group_norm(x, 8, w, b, eps=1e-5)))


def groupnorm_relu_group() -> KernelGroup:
    return KernelGroup(
        "groupnorm_relu", {"op": "F.relu(F.group_norm(x, 8, weight, bias, eps=1e-5)); C=16, N=2, 6x6"},
        lambda: draw_norm_inputs((2, 16, 6, 6), (16,)),
        lambda inputs: layer_outputs(inputs, lambda x, w, b: F.relu(F.group_norm(x, 8, w, b, eps=1e-5))))


def layernorm_group() -> KernelGroup:
    return KernelGroup(
        "layernorm", {"op": "F.layer_norm(x, (4, 7, 7), weight, bias, eps=1e-5); weight, bias [4,7,7]; N=2"},
        lambda: draw_norm_inputs((2, 4, 7, 7), (4, 7, 7)),
        lambda inputs: layer_outputs(inputs, lambda x, w, b: F.layer_norm(x, (4, 7, 7), w, b, eps=1e-5)))


# MARK: Activations

def unary_group(name: str, op: str, forward, input_shape: tuple, output_shape: tuple) -> KernelGroup:
    return KernelGroup(name, {"op": op}, lambda: {"x": torch.randn(*input_shape) * 2, "gy": torch.randn(*output_shape)},
                       lambda inputs: unary_outputs(inputs, forward))


def gelu_group() -> KernelGroup:
    shape = (2, 3, 5, 5)
    return unary_group("gelu", "F.gelu(x) exact (approximate='none'); x ~ 2 N(0,1)", F.gelu, shape, shape)


def silu_group() -> KernelGroup:
    shape = (2, 3, 5, 5)
    return unary_group("silu", "F.silu(x) = x sigmoid(x); x ~ 2 N(0,1)", F.silu, shape, shape)


# MARK: Convolutions

def draw_convolution_inputs(input_shape: tuple, weight_shape: tuple, bias_size: int,
                            output_shape: tuple) -> dict[str, torch.Tensor]:
    # why the 0.3: weights of the order of a trained layer's, so outputs stay of order 1 (as kernels.py).
    return {"x": torch.randn(*input_shape), "weight": torch.randn(*weight_shape) * 0.3,
            "bias": torch.randn(bias_size), "gy": torch.randn(*output_shape)}


def conv_group(name: str, kernel: int, stride: int, padding: int, input_shape: tuple, out_channels: int) -> KernelGroup:
    n, cin, h, w = input_shape
    oh, ow = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
    return KernelGroup(
        name, {"op": f"F.conv2d(x, weight, bias, stride={stride}, padding={padding}); weight [Cout,Cin,{kernel},{kernel}]"},
        lambda: draw_convolution_inputs(input_shape, (out_channels, cin, kernel, kernel), out_channels,
                                        (n, out_channels, oh, ow)),
        lambda inputs: layer_outputs(inputs, lambda x, wt, b: F.conv2d(x, wt, b, stride=stride, padding=padding)))


def conv_transpose_group(name: str, kernel: int, stride: int, padding: int, input_shape: tuple,
                         out_channels: int) -> KernelGroup:
    n, cin, h, w = input_shape
    oh, ow = (h - 1) * stride - 2 * padding + kernel, (w - 1) * stride - 2 * padding + kernel
    return KernelGroup(
        name, {"op": f"F.conv_transpose2d(x, weight, bias, stride={stride}, padding={padding}); "
                     f"weight [Cin,Cout,{kernel},{kernel}]"},
        lambda: draw_convolution_inputs(input_shape, (cin, out_channels, kernel, kernel), out_channels,
                                        (n, out_channels, oh, ow)),
        lambda inputs: layer_outputs(
            inputs, lambda x, wt, b: F.conv_transpose2d(x, wt, b, stride=stride, padding=padding)))


# MARK: Resampling

def bilinear_group() -> KernelGroup:
    return unary_group(
        "upsample_bilinear", "F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)",
        lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), (2, 3, 4, 5), (2, 3, 8, 10))


def avgpool_group() -> KernelGroup:
    return unary_group("avgpool3", "F.avg_pool2d(x, 3) (stride 3, no padding) on 6x6",
                       lambda x: F.avg_pool2d(x, 3), (2, 3, 6, 6), (2, 3, 2, 2))


# The order in which the groups draw from the stream: append new groups at the end.
GROUPS = [groupnorm_group(), groupnorm_relu_group(), layernorm_group(), gelu_group(), silu_group(),
          conv_group("conv_k4s2p1", 4, 2, 1, (2, 3, 10, 10), 4),
          conv_group("conv_k2s1p0", 2, 1, 0, (2, 3, 7, 7), 4),
          conv_transpose_group("conv_transpose_k4s2p1", 4, 2, 1, (2, 3, 5, 5), 4),
          conv_transpose_group("conv_transpose_k2s2p0", 2, 2, 0, (2, 4, 4, 4), 3),
          conv_transpose_group("conv_transpose_k4s4_1x1", 4, 4, 0, (2, 6, 1, 1), 3),
          conv_transpose_group("conv_transpose_k2s1p0", 2, 1, 0, (2, 3, 6, 6), 4),
          bilinear_group(), avgpool_group()]


if __name__ == "__main__":
    sys.exit(main(GROUPS, GENERATOR, __doc__))
