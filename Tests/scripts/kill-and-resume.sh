#!/usr/bin/env bash
# Nothing lost: trains a small U-Net on 2 ranks straight through, then again while killing rank 0
# with SIGKILL at three moments (inside a step, during sampling, half-way through writing a
# checkpoint) and resuming after each; then again stopped by SIGUSR1 (twice, the second while the
# first's checkpoint is being written) and resumed. Each interrupted run must end with the same
# checkpoint, bit for bit, as the uninterrupted one. Prints every comparison; exits 1 on a mismatch.
#   Tests/scripts/kill-and-resume.sh [path/to/disttrain]
set -uo pipefail
bin=$(realpath "${1:-.build/release/disttrain}")
work=$(mktemp -d /tmp/disttrain-kill-XXXXXX)
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=FALSE
failures=0

# 64 random 8×8 gray images in IDX format, turned into the dataset layout by `disttrain prepare`.
{ printf '\x00\x00\x08\x03\x00\x00\x00\x40\x00\x00\x00\x08\x00\x00\x00\x08'; head -c 4096 /dev/urandom; } > images.idx
"$bin" prepare --source idx --input images.idx --out images.h5 > /dev/null || { echo "prepare failed"; exit 1; }

train() { mpirun -np 2 "$bin" train --model cnn --data images.h5 --batch-size 4 --checkpoint-every 3 \
            --sample-every 5 --sample-count 2 --sampler-steps 2 --ema-rate 0.9 --seed 4 "$@"; }

compare() {  # compare A B: every array of the final checkpoints must be identical
  local same=1
  for group in /model /optimizer /ema /ranks /state; do
    h5diff -q "$1" "$2" "$group" > /dev/null 2>&1 || { same=0; echo "  $group differs"; }
  done
  if [ $same = 1 ]; then echo "identical: $1 and $2 (model, optimizer, EMA, per-rank RNG/data/BatchNorm, step)"
  else echo "DIFFERENT: $1 and $2"; failures=$((failures + 1)); fi
}

expect_status() {  # expect_status WANT GOT WHAT
  if [ "$2" = "$1" ]; then echo "  $3: exit status $2 as expected"
  else echo "  $3: exit status $2, expected $1"; failures=$((failures + 1)); fi
}

echo "== straight runs (12 and 60 steps)"
train --steps 12 --out straight > straight.log 2>&1; expect_status 0 $? "uninterrupted 12 steps"
train --steps 60 --sample-every 1000 --out straight60 > straight60.log 2>&1; expect_status 0 $? "uninterrupted 60 steps"

echo "== SIGKILL of rank 0 at three moments, resuming after each"
train --steps 12 --out killed --crash-at step:5 > k1.log 2>&1; status=$?
[ $status -ne 0 ] && echo "  killed inside step 5 (exit $status); checkpoints: $(ls killed | grep -c '^ckpt-')" || { echo "  step:5 did not crash"; failures=$((failures + 1)); }
train --steps 12 --out killed --resume --crash-at sampling:10 > k2.log 2>&1; status=$?
[ $status -ne 0 ] && echo "  killed while sampling at step 10 (exit $status); resumed from: $(grep -o 'resumed from [^ ]* at step [0-9]*' k2.log)" || { echo "  sampling:10 did not crash"; failures=$((failures + 1)); }
train --steps 12 --out killed --resume --crash-at checkpoint:12 > k3.log 2>&1; status=$?
partial=$(ls -a killed | grep -c '\.partial$')
[ $status -ne 0 ] && echo "  killed writing the step-12 checkpoint (exit $status); partial files left: $partial; complete: $(ls killed | grep '^ckpt-' | tr '\n' ' ')" || { echo "  checkpoint:12 did not crash"; failures=$((failures + 1)); }
[ -e killed/ckpt-00000012.h5 ] && { echo "  a half-written checkpoint was exposed under its final name"; failures=$((failures + 1)); }
train --steps 12 --out killed --resume > k4.log 2>&1; expect_status 0 $? "final resume ($(grep -o 'resumed from [^ ]* at step [0-9]*' k4.log))"
compare straight/ckpt-00000012.h5 killed/ckpt-00000012.h5

echo "== SIGUSR1 (twice) to every rank, as a scheduler's warning, then resume"
train --steps 60 --sample-every 1000 --out preempted > p1.log 2>&1 & job=$!
for _ in $(seq 600); do [ "$( (wc -l < preempted/metrics.jsonl) 2>/dev/null || echo 0)" -ge 5 ] && break; sleep 0.1; done
ranks=$(pgrep -f -- "$bin train .*--out preempted")
kill -USR1 $ranks; sleep 0.05; kill -USR1 $ranks 2>/dev/null
wait $job; expect_status 75 $? "stopped on SIGUSR1 after step $(grep -o 'after step [0-9]*' p1.log | grep -o '[0-9]*')"
train --steps 60 --sample-every 1000 --out preempted --resume > p2.log 2>&1; expect_status 0 $? "resume"
compare straight60/ckpt-00000060.h5 preempted/ckpt-00000060.h5

rm -rf "$work"
echo "kill-and-resume: $failures failure(s)"
[ $failures -eq 0 ]
