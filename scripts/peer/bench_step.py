"""Times in PyTorch the training step that `disttrain bench` times, or the sampling work of
`disttrain sample --sampler ddim --sampler-steps 50`, on the U-Nets of unet.py.

Training step (Sources/DistTrain/BenchCommand.swift, Models/TrainingStep.swift, DiffusionLoss.swift):
one fixed batch x0 of B 3×32×32 images, uniform in [-1, 1]; each step draws t ~ U{0..999} and
ε ~ N(0, I), forms x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (linear β 1e-4…0.02, T 1000), MSE on the predicted
noise, backward, the global gradient norm (disttrain computes it to skip non-finite updates), Adam
(lr 1e-4, β 0.9/0.999, ε 1e-8). BatchNorm in train mode. Warm-up steps untimed; the median of the
timed steps is taken as disttrain takes it (sorted[n // 2]).

Sampling (--sample): eval mode, a batch of --count images, --sampler-steps deterministic DDIM steps
(η = 0) over disttrain's timestep sequence, under torch.inference_mode; one untimed warm-up forward.

The last line printed is one JSON object.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet import MODELS, build  # noqa: E402
from zoo import INSTANCES  # noqa: E402

T = 1000


def alpha_bars():
    # NoiseSchedule.swift: β = linspace(1e-4, 0.02, T) in double precision, ᾱ = cumprod(1 − β).
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


def median(xs):
    return sorted(xs)[len(xs) // 2]  # BenchCommand.swift's choice (the upper one of an even count)


def build_benched(a):
    """The model and its sample shape: a U-Net of unet.py, or with --instance one of the seeds' (zoo.py)."""
    if a.instance:
        name, shape, make = INSTANCES[a.instance]
        if name != a.model:
            sys.exit(f"--instance {a.instance} is a {name}, not a {a.model}")
        return make(), shape
    return build(a.model), (3, 32, 32)


def bench_train(a):
    model, shape = build_benched(a)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]  # MyUNet's time table is frozen, as ours
    adam = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[a.adam]
    opt = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, **adam)
    ab = alpha_bars()
    sqrt_ab, sqrt_1mab = ab.sqrt().float(), (1 - ab).sqrt().float()
    x0 = torch.rand(a.batch_size, *shape) * 2 - 1  # the same batch every step, as in bench

    def step():
        t = torch.randint(0, T, (a.batch_size,))
        eps = torch.randn_like(x0)
        xt = sqrt_ab[t].view(-1, 1, 1, 1) * x0 + sqrt_1mab[t].view(-1, 1, 1, 1) * eps
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(xt, t), eps)
        loss.backward()
        norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])  # MyUNet's b_out.2.ln is never used (ZOO §4)
        if torch.isfinite(loss) and torch.isfinite(norm):  # disttrain skips non-finite updates
            opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    seconds = []
    for s in range(a.steps):
        start = time.perf_counter()
        loss = step()
        seconds.append(time.perf_counter() - start)
        print(f"step {s + 1}  loss {loss:.4f}  {seconds[-1]:.3f} s  {a.batch_size / seconds[-1]:.2f} img/s", flush=True)
    m = median(seconds)
    return {"program": "pytorch", "model": a.model, "instance": a.instance, "batch": a.batch_size, "threads": a.threads,
            "steps": a.steps, "warmup": a.warmup, "adam": a.adam,
            "median_step_s": round(m, 4), "img_per_s": round(a.batch_size / m, 4), "torch": torch.__version__}


def bench_sample(a):
    model = build(a.model)
    model.eval()
    ab = alpha_bars()
    # DiffusionSampler.ddimTimesteps: k·T/S for k = 0..S-1, from the largest down.
    ts = [k * T // a.sampler_steps for k in range(a.sampler_steps)][::-1]
    with torch.inference_mode():
        x = torch.randn(a.count, 3, 32, 32)
        model(x, torch.full((a.count,), ts[0], dtype=torch.long))  # warm-up, untimed
        start = time.perf_counter()
        for k, t in enumerate(ts):
            eps = model(x, torch.full((a.count,), t, dtype=torch.long))
            prev = ab[ts[k + 1]].item() if k + 1 < len(ts) else 1.0
            cur = ab[t].item()
            # η = 0: x_prev = √ᾱ_prev·x̂0 + √(1−ᾱ_prev)·ε̂, x̂0 = (x − √(1−ᾱ)·ε̂)/√ᾱ
            c0 = (prev / cur) ** 0.5
            c1 = (1 - prev) ** 0.5 - (prev * (1 - cur) / cur) ** 0.5
            x = c0 * x + c1 * eps
        x = x.clamp(-1, 1)
        seconds = time.perf_counter() - start
    return {"program": "pytorch", "mode": "sample", "model": a.model, "count": a.count,
            "sampler_steps": a.sampler_steps, "threads": a.threads, "seconds": round(seconds, 4),
            "seconds_per_step": round(seconds / a.sampler_steps, 4), "torch": torch.__version__}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(set(MODELS) | {name for name, _, _ in INSTANCES.values()}), default="cnn-large")
    p.add_argument("--instance", choices=sorted(INSTANCES), help="one of the seeds' models' instances (zoo.py); training only")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="timed steps (after the warm-up)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up steps (bench's default: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--adam", choices=["default", "foreach", "fused"], default="default",
                   help="torch.optim.Adam implementation (default: what PyTorch picks on CPU)")
    p.add_argument("--sample", action="store_true", help="time DDIM sampling instead of training steps")
    p.add_argument("--count", type=int, default=64, help="--sample: images (one batch)")
    p.add_argument("--sampler-steps", type=int, default=50, help="--sample: DDIM steps")
    a = p.parse_args()
    if a.model not in MODELS and not a.instance:
        p.error(f"--model {a.model} needs --instance (one of {', '.join(sorted(INSTANCES))})")
    if a.instance and a.sample:
        p.error("--sample times the U-Nets of unet.py only")
    if min(a.batch_size, a.threads, a.steps, a.count, a.sampler_steps) < 1 or a.warmup < 0:
        p.error("sizes and counts must be at least 1 (--warmup at least 0)")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    result = bench_sample(a) if a.sample else bench_train(a)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
