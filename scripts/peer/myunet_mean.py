"""MyUNet is blind to the mean and scale of x_t (b1.0's LayerNorm over (C, H, W)): loads a my-unet checkpoint of
disttrain into PyTorch's module, shows ε̂ unchanged by x + 0.3 and 2x, and samples DDIM 50 with and without the
noise's per-image mean. Usage (the peer venv): python scripts/peer/myunet_mean.py runs/my-unet/ckpt-….h5 (README)."""
import os, sys, numpy as np, torch, h5py
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "generate"))
from zoo_modules import MyUNet
torch.set_num_threads(1)
ck = sys.argv[1]
net = MyUNet(1, 1000, 100)
with h5py.File(ck) as f:
    sd = {k: torch.from_numpy(f["model"][k][:]) for k in f["model"]}
net.load_state_dict(sd, strict=True)  # every name and shape as PyTorch's
net.eval()
T = 1000; betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64); ab = torch.cumprod(1 - betas, 0)
# 1. blindness: the output does not change when a constant is added to x_t
x = torch.randn(8, 1, 28, 28); t = torch.full((8,), 500)
with torch.no_grad():
    d = (net(x + 0.3, t) - net(x, t)).abs().max().item()
    s = (net(2 * x, t) - net(x, t)).abs().max().item()
print(f"max |eps(x+0.3) - eps(x)| = {d:.2e}   max |eps(2x) - eps(x)| = {s:.2e}")
steps = [k * T // 50 for k in range(50)][::-1]
print(f"1/sqrt(abar[{steps[0]}]) = {1/ab[steps[0]].sqrt().item():.1f}")
def sample(xs):
    with torch.no_grad():
        for i, t in enumerate(steps):
            a = ab[t].float(); ap = ab[steps[i + 1]].float() if i + 1 < len(steps) else torch.tensor(1.0)
            eps = net(xs, torch.full((len(xs),), t, dtype=torch.int64))
            x0 = (xs - (1 - a).sqrt() * eps) / a.sqrt()
            xs = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
    return xs
g = torch.Generator().manual_seed(0)
z = torch.randn(64, 1, 28, 28, generator=g)
zc = z - z.mean(dim=(1, 2, 3), keepdim=True)
for name, start in (("plain noise", z), ("noise without its mean", zc)):
    out = sample(start.clone())
    m = out.mean(dim=(1, 2, 3)); img = out.clamp(-1, 1)
    sat = ((img <= -1) | (img >= 1)).float().mean().item()
    print(f"{name:24s} start mean std {start.mean(dim=(1,2,3)).std().item():.3f}  sample mean std {m.std().item():.2f}  "
          f"|mean|>0.9: {(m.abs() > 0.9).float().mean().item():.2f}  saturated pixels {sat:.3f}  within-image std {img.std(dim=(1,2,3)).mean().item():.2f}")
