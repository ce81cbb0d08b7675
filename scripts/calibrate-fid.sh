#!/usr/bin/env bash
# Calibrates `disttrain evaluate` on Fashion-MNIST 32×32: FID/KID/class entropy of real images (the
# t10k set against 10k training images), the same images blurred (Gaussian, σ = 1 px), and uniform
# noise. FID must rank them real < blurred < noise. Prints a Markdown table.
#   scripts/calibrate-fid.sh [FEATURES.h5]     (default: runs/features/fmnist.h5, trained if missing)
# The blurred and noise sets are made with numpy + h5py from the benchmark venv ($PEER_VENV or
# /work/venv-golden; see scripts/bench-peer.sh), outside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${DISTTRAIN_BINARY:-.build/release/disttrain}
features=${1:-runs/features/fmnist.h5}
python=${PEER_VENV:-/work/venv-golden}/bin/python
[ -x "$python" ] && "$python" -c "import h5py, numpy" 2>/dev/null || { echo "calibrate-fid: needs a venv with numpy and h5py (PEER_VENV)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
[ -f data/fashion-mnist-32.h5 ] || "$binary" prepare
[ -f data/fashion-mnist-32-t10k.h5 ] || "$binary" prepare --input /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --out data/fashion-mnist-32-t10k.h5
if [ ! -f "$features" ]; then
  mkdir -p "$(dirname "$features")"
  mpirun -np 2 "$binary" classifier --data data/fashion-mnist-32.h5 --heldout-data data/fashion-mnist-32-t10k.h5 --out "$features"
fi
work=$(mktemp -d /tmp/calibrate-fid.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$python" - "$work" <<'EOF'
import sys, h5py, numpy as np
work = sys.argv[1]
x = h5py.File("data/fashion-mnist-32-t10k.h5", "r")["images"][...].astype(np.float64)   # [N, 1, 32, 32] uint8
r = np.arange(-3, 4); k = np.exp(-r**2 / 2.0); k /= k.sum()                                # Gaussian, sigma 1 px
blur = x
for axis in (2, 3):
    padded = np.pad(blur, [(0, 0)] * axis + [(3, 3)] + [(0, 0)] * (3 - axis), mode="edge")
    blur = sum(k[i] * np.take(padded, np.arange(i, i + x.shape[axis]), axis=axis) for i in range(7))
with h5py.File(f"{work}/blurred.h5", "w") as f: f["images"] = np.clip(np.rint(blur), 0, 255).astype(np.uint8)
rng = np.random.default_rng(0)
with h5py.File(f"{work}/noise.h5", "w") as f: f["images"] = rng.integers(0, 256, size=x.shape, dtype=np.uint8)
EOF
echo "| images (10,000 each) | FID | KID | class entropy (nats) |"
echo "|---|---|---|---|"
for set in "real (t10k vs train)|data/fashion-mnist-32-t10k.h5" "t10k blurred (σ = 1 px)|$work/blurred.h5" "uniform noise|$work/noise.h5"; do
  name=${set%%|*}; file=${set#*|}
  json=$("$binary" evaluate --features "$features" --images "$file" --reference-count 10000 | tail -1)
  "$python" -c "import json, sys; r = json.loads(sys.argv[1]); print(f\"| $name | {r['fid']:.3f} | {r['kid']:.4f} ± {r['kid_std']:.4f} | {r['class_entropy']:.3f} |\")" "$json"
done
