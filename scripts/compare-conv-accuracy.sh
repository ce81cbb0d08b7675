#!/usr/bin/env bash
# Winograd changes rounding, not the function: train `cnn` for N steps with im2col and with Winograd
# (every 3×3 layer F(4×4), the most rounding), over several seeds, and print each run's loss curve in
# windows of 50 steps and its final loss (mean of the last 50 steps). The im2col runs' range over
# seeds is the run-to-run spread the Winograd runs must fall within (issue 10).
#   scripts/compare-conv-accuracy.sh [--steps 300] [--seeds "1 2 3"] [--algorithms "im2col winograd-f4"] [--data FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=300; seeds="1 2 3"; algorithms="im2col winograd-f4"; data=()
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;; --seeds) seeds=$2; shift 2 ;; --algorithms) algorithms=$2; shift 2 ;;
    --data) data=(--data "$2"); shift 2 ;; *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
binary=.build/release/disttrain
[ -x "$binary" ] || swift build -c release >/dev/null
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for algorithm in $algorithms; do
  for seed in $seeds; do
    out="$work/$algorithm-$seed"
    "$binary" train --model cnn --steps "$steps" --batch-size 8 --lr 1e-3 --seed "$seed" --conv-algorithm "$algorithm" \
      --sample-every 0 --checkpoint-every "$steps" --log-every "$steps" --out "$out" "${data[@]}" >/dev/null
    # metrics.csv: step,epoch,loss,...
    awk -F, -v a="$algorithm" -v s="$seed" 'NR > 1 { w = int(($1 - 1) / 50); sum[w] += $3; n[w]++; last = w }
      END { printf "%-12s seed %s  loss by 50 steps:", a, s; for (i = 0; i <= last; i++) printf " %.4f", sum[i] / n[i]
            printf "  final %.4f\n", sum[last] / n[last] }' "$out/metrics.csv"
  done
done
