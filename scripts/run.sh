#!/usr/bin/env bash
# The main job, end to end on this machine: install and build, prepare the default data
# (Fashion-MNIST from Debian's dataset-fashion-mnist, padded to 32×32), then a short 2-rank training
# of the default model (CNNDenoiserLarge) that leaves checkpoints, metrics and a sample grid in runs/demo.
#   scripts/run.sh [extra train options]      e.g. scripts/run.sh --steps 200
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --fashion-mnist
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
rm -rf runs/demo
mpirun -np 2 .build/release/disttrain train --steps 10 --batch-size 8 --checkpoint-every 5 \
  --sample-count 16 --sampler ddim --sampler-steps 10 --log-every 1 --out runs/demo "$@"
ls -l runs/demo runs/demo/samples
