"""PyTorch twins of disttrain's U-Nets, CNNDenoiser (`cnn`) and CNNDenoiserLarge (`cnn-large`).

Written from our Swift code (Sources/Models/UNetDenoiser.swift, UNetBlock.swift and the layers they
use) and SPEC.md §1, so that `state_dict()` has exactly the names and shapes of the tensors under
/model in our checkpoints. Used by bench_step.py to time the same training step in PyTorch.

    python unet.py --check [--names FILE]        parameter counts; names/shapes against FILE
    python unet.py --compare-predict CKPT X.h5 EPS.h5
                                                 loads CKPT, runs eval forward on X.h5's /x, /t and
                                                 compares with `disttrain predict`'s /eps in EPS.h5

FILE has one tensor a line, "name d0,d1,..." (bench-peer.sh writes it from `h5ls` of a checkpoint).
"""
import argparse
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

TIME_DIM = 128  # Tensor/TimeEmbedding.swift: timeEmbeddingDimension

# name -> (base channels b, depth D), as in UNetDenoiser.swift's ModelArchitecture.cnn / .cnnLarge
MODELS = {"cnn": (64, 2), "cnn-large": (128, 3)}
EXPECTED_PARAMETERS = {"cnn": 3_321_475, "cnn-large": 53_441_795}


def time_embedding(t, dim=TIME_DIM):
    """[sin(t·f_k), cos(t·f_k)], f_k = exp(-ln(10000)·k/(half-1)), raw integer t (not normalised).

    Float32 in the order our Swift code computes it: (k·(-ln 1e4))/(half-1), exp, then t·f.
    """
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32)
    freqs = torch.exp(k * -math.log(10000.0) / (half - 1))
    angles = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm2d (eps 1e-5, momentum 0.1, affine) without the `num_batches_tracked` buffer.

    Our checkpoints hold only weight, bias, running_mean and running_var; PyTorch reads
    num_batches_tracked only when momentum is None, which it never is here, so dropping it changes
    nothing but the state_dict keys (which must equal ours).
    """

    def __init__(self, channels):
        super().__init__(channels, eps=1e-5, momentum=0.1)
        self.num_batches_tracked = None  # a None buffer is left out of state_dict()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Skip _BatchNorm's shim, which adds a num_batches_tracked key to version-less state dicts.
        nn.Module._load_from_state_dict(self, state_dict, prefix, *args, **kwargs)


class Block(nn.Module):
    """UNetBlock.swift: h = ReLU(bn1(conv1(x))) + time_mlp(emb)[:, :, None, None];
    y = ReLU(bn2(conv2(h))). No residual, no dropout, no activation on the embedding."""

    def __init__(self, cin, cout):
        super().__init__()
        # Registration order = our ParameterTable order (conv1, bn1, time_mlp, conv2, bn2).
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn1 = BatchNorm(cout)
        self.time_mlp = nn.Linear(TIME_DIM, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = BatchNorm(cout)

    def forward(self, x, emb):
        h = F.relu(self.bn1(self.conv1(x)))
        h = h + self.time_mlp(emb)[:, :, None, None]
        return F.relu(self.bn2(self.conv2(h)))


class UNet(nn.Module):
    """UNetDenoiser.swift with C_i = b·2^i:
    init_conv (3x3, 3→b) → down1..downD (each kept as skip s_i, then MaxPool2d(2)) → bottleneck
    → for each level from the bottom: bilinear ×2 (align_corners=True), cat[x, s_i] (x first),
    up_block (up_block1 is the deepest) → out_conv (1x1, b→3)."""

    def __init__(self, base, depth, in_channels=3):
        super().__init__()
        self.depth = depth
        c = [base << i for i in range(depth + 1)]
        self.init_conv = nn.Conv2d(in_channels, base, 3, padding=1)
        # Attributes, not a ModuleList: the state_dict names are down1.…, not downs.0.…
        for i in range(1, depth + 1):
            setattr(self, f"down{i}", Block(c[i - 1], c[i]))
        self.bottleneck = Block(c[depth], c[depth])
        for j in range(1, depth + 1):
            i = depth - j + 1  # up_block j serves level i (1-based): 2·C_i → C_{i-1}
            setattr(self, f"up_block{j}", Block(2 * c[i], c[i - 1]))
        self.out_conv = nn.Conv2d(base, in_channels, 1)

    def forward(self, x, t):
        emb = time_embedding(t)
        x = self.init_conv(x)
        skips = []
        for i in range(1, self.depth + 1):
            x = getattr(self, f"down{i}")(x, emb)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x, emb)
        for j in range(1, self.depth + 1):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            x = torch.cat([x, skips.pop()], dim=1)
            x = getattr(self, f"up_block{j}")(x, emb)
        return self.out_conv(x)


def build(name):
    base, depth = MODELS[name]
    return UNet(base, depth)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def read_names(path):
    """{name: shape} from lines "name d0,d1,...", as bench-peer.sh writes them."""
    tensors = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                name, dims = line.split()
                tensors[name] = tuple(int(d) for d in dims.split(","))
    return tensors


def check(names_path):
    """Parameter counts of both models; with names_path, its names/shapes against one model's."""
    ok = True
    for name in MODELS:
        n = parameter_count(build(name))
        good = n == EXPECTED_PARAMETERS[name]
        ok &= good
        print(f"{name}: {n:,} parameters (expected {EXPECTED_PARAMETERS[name]:,}) {'ok' if good else 'MISMATCH'}")
    if names_path:
        ours = read_names(names_path)
        # The file is of one model: the one whose state_dict has the same number of tensors and shapes.
        for name in MODELS:
            theirs = {k: tuple(v.shape) for k, v in build(name).state_dict().items()}
            if set(theirs) == set(ours) and all(theirs[k] == ours[k] for k in ours):
                print(f"{names_path}: all {len(ours)} tensors match {name}'s state_dict (names and shapes)")
                break
        else:
            ok = False
            for name in MODELS:
                theirs = {k: tuple(v.shape) for k, v in build(name).state_dict().items()}
                print(f"{names_path} against {name}:")
                for k in sorted(set(ours) - set(theirs)):
                    print(f"  only in file: {k} {ours[k]}")
                for k in sorted(set(theirs) - set(ours)):
                    print(f"  only in PyTorch: {k} {theirs[k]}")
                for k in sorted(set(ours) & set(theirs)):
                    if ours[k] != theirs[k]:
                        print(f"  shape differs: {k} file {ours[k]} PyTorch {theirs[k]}")
    return ok


def compare_predict(checkpoint, inputs, predicted):
    """Our weights in the PyTorch model, eval forward, against `disttrain predict` on the same input."""
    import h5py
    import numpy as np

    with h5py.File(checkpoint, "r") as f:
        name = f.attrs["model"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in f["model"].items()}
    model = build(name)
    model.load_state_dict(state, strict=True)
    model.eval()
    with h5py.File(inputs, "r") as f:
        x = torch.from_numpy(np.asarray(f["x"], dtype=np.float32))
        t = torch.from_numpy(np.asarray(f["t"]).astype(np.int64))
    with h5py.File(predicted, "r") as f:
        eps = torch.from_numpy(np.asarray(f["eps"], dtype=np.float32))
    with torch.inference_mode():
        mine = model(x, t)
    diff = (mine - eps).abs().max().item()
    scale = eps.abs().max().item()
    print(f"{name}: PyTorch eval forward vs disttrain predict on {len(x)} images: "
          f"max |diff| {diff:.3g} (max |eps| {scale:.3g})")
    return diff <= 1e-3 * max(scale, 1.0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="print parameter counts, compare with --names")
    p.add_argument("--names", help="file of 'name d0,d1,...' lines from one of our checkpoints")
    p.add_argument("--compare-predict", nargs=3, metavar=("CKPT", "X_H5", "EPS_H5"))
    a = p.parse_args()
    if a.compare_predict:
        sys.exit(0 if compare_predict(*a.compare_predict) else 1)
    if a.check or a.names:
        sys.exit(0 if check(a.names) else 1)
    p.print_help()


if __name__ == "__main__":
    main()
