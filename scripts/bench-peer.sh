#!/usr/bin/env bash
# disttrain against PyTorch (scripts/peer/) on the same work, one process, same threads.
#   scripts/bench-peer.sh [--model cnn-large|cnn|context-unet|needle-unet|my-unet|ddim-unet] [--instance NAME] [--threads 1|2] [--batch-size 8] [--rounds 3]
#                         [--steps 5] [--warmup 1] [--conv-algorithm auto|im2col|winograd|…] [--sample] [--check]
# --model and --threads take comma lists (cnn,cnn-large / 1,2): every combination is one configuration.
# --instance (training only): one of the seeds' models' instances as `disttrain models` lists them
#   (context_unet, context_unet_fmnist, needle_unet, needle_unet_small, my_unet, ddim_unet, ddim_unet_rgb; PyTorch's from scripts/peer/zoo.py).
# Training (default): per configuration, `rounds` times alternately `disttrain bench` and
#   scripts/peer/bench_step.py (same batch, threads, warm-up and timed steps); prints each pair's
#   img/s and ratio = disttrain / PyTorch (> 1: disttrain faster).
# --sample: `disttrain sample` of 64 images, DDIM 50 steps, from a 1-step checkpoint, against PyTorch's
#   eval forward of the same batch ×50. disttrain's time is the one it prints for the sampling itself
#   (start-up, checkpoint loading and writing the grid excluded); its wall time is reported too.
#   ratio = PyTorch s / disttrain s.
# --check: PyTorch's state_dict names/shapes against a checkpoint of our binary, parameter counts, and
#   PyTorch's eval forward with our weights against `disttrain predict`.
# OpenBLAS picks its kernels from the CPU model and may not know a recent one (0.3.21 takes family 6
#   model 207 for Prescott, SSE3 only; disttrain on main now forces the CPU's best core at start-up
#   unless OPENBLAS_CORETYPE is set): the JSON records the core bench reports, so a figure taken on the
#   wrong kernels shows as such. PyTorch uses MKL and oneDNN, not OpenBLAS.
# The last line is one JSON object (with several configurations: {"configurations": [...]}).
# The venv lives outside the repository: $PEER_VENV, else /work/venv-golden when it already has
# torch 2.13.0+cpu, else /work/venv-peer (created, scripts/peer/requirements.txt installed).
set -euo pipefail
shopt -s inherit_errexit   # a failing step inside $(…) stops the script too
cd "$(dirname "$0")/.."
repo=$PWD
models=cnn-large; instance=""; threads_list=1; batch=8; rounds=3; steps=5; warmup=1; conv=auto; mode=train; count=64; ddim=50
while [ $# -gt 0 ]; do
  case "$1" in
    --model) models=$2; shift 2 ;; --instance) instance=$2; shift 2 ;; --threads) threads_list=$2; shift 2 ;; --batch-size) batch=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;; --steps) steps=$2; shift 2 ;; --warmup) warmup=$2; shift 2 ;;
    --conv-algorithm) conv=$2; shift 2 ;; --sample) mode=sample; shift ;; --check) mode=check; shift ;;
    --count) count=$2; shift 2 ;; --sampler-steps) ddim=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$ddim" -ge 1 ] || { echo "--sampler-steps must be at least 1" >&2; exit 2; }
[ -z "$instance" ] || [ "$mode" = train ] || { echo "--instance times training steps only" >&2; exit 2; }
instance_args=(); [ -z "$instance" ] || instance_args=(--instance "$instance")
IFS=, read -ra model_list <<< "$models"; IFS=, read -ra thread_list <<< "$threads_list"
[ "$mode" = check ] && [ "$models" = cnn-large ] && model_list=(cnn cnn-large)   # check both unless told
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
binary=.build/release/disttrain
[ -x "$binary" ] || swift build -c release >/dev/null

# --- the PyTorch venv ---
torch_pin=$(grep -oE '^torch==[^ ]+' scripts/peer/requirements.txt | cut -d= -f3)
has_pins() { [ -x "$1/bin/python" ] && "$1/bin/python" - "$torch_pin" <<'EOF' 2>/dev/null
import sys, torch, numpy, h5py
sys.exit(torch.__version__ != sys.argv[1])
EOF
}
if [ -n "${PEER_VENV:-}" ]; then venv=$PEER_VENV
elif has_pins /work/venv-golden; then venv=/work/venv-golden
else venv=/work/venv-peer; fi
if ! has_pins "$venv"; then
  echo "setting up $venv (torch $torch_pin)" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # torch ==…+cpu is not on PyPI: pip finds it in its --find-links directory (PIP_FIND_LINKS).
  "$venv/bin/pip" install -q -r scripts/peer/requirements.txt ||
    { echo "error: could not install scripts/peer/requirements.txt into $venv (torch $torch_pin needs its CPU wheel in a pip --find-links directory, PIP_FIND_LINKS)" >&2; exit 1; }
fi
py=$venv/bin/python

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# Wait (up to $QUIET_WAIT, default 60 s) until the CPUs are ≥ 93 % idle: another process skews these timings 2–4×.
quiet() {
  for _ in $(seq "${QUIET_WAIT:-60}"); do
    read -r _ u n s i w q sq st _ < /proc/stat; a1=$((u+n+s+i+w+q+sq+st)); i1=$i; sleep 1
    read -r _ u n s i w q sq st _ < /proc/stat; a2=$((u+n+s+i+w+q+sq+st))
    [ $(( 100*(i-i1)/(a2-a1) )) -ge 93 ] && return
  done
  echo "warning: machine not quiet" >&2
}
field() { grep -oE "\"$1\": ?[0-9.e-]+" | head -1 | sed -E 's/.*: ?//'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }
# Runs a command, prints its wall seconds; its output goes to $work/out (shown on failure).
wall() { local t0; t0=$(now); "$@" > "$work/out" 2>&1 || { cat "$work/out" >&2; return 1; }; awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.4f\n", b - a }'; }

# A 1-step checkpoint of $1 on 16 random 3×32×32 images (uint8 .npy → disttrain prepare).
checkpoint() {
  local model=$1 dir=$work/ckpt-$1
  if [ ! -d "$dir" ]; then
    [ -f "$work/toy.h5" ] || {
      "$py" -c "import numpy as np; np.save('$work/toy.npy', np.random.default_rng(0).integers(0, 256, (16, 3, 32, 32), dtype=np.uint8))"
      "$binary" prepare --source npy --input "$work/toy.npy" --out "$work/toy.h5" >/dev/null
    }
    "$binary" train --model "$model" --data "$work/toy.h5" --steps 1 --batch-size 2 --sample-count 0 \
      --conv-algorithm "$conv" --threads "${OPENBLAS_NUM_THREADS:-1}" --out "$dir" >/dev/null
  fi
  ls "$dir"/ckpt-*.h5 | tail -1
}

results=()
case "$mode" in
check)
  "$py" scripts/peer/unet.py --check
  for model in "${model_list[@]}"; do
    ck=$(checkpoint "$model")
    # Our names and shapes as the binary wrote them: h5ls lines "name  Dataset {d0, d1}".
    h5ls "$ck/model" | sed -E 's/^(\S+)\s+Dataset \{([^}]*)\}.*/\1 \2/; s/, /,/g' > "$work/names-$model.txt"
    "$py" scripts/peer/unet.py --names "$work/names-$model.txt" | tail -1
    "$py" -c "
import h5py, numpy as np
r = np.random.default_rng(1)
with h5py.File('$work/x.h5', 'w') as f:
    f['x'] = r.standard_normal((6, 3, 32, 32)).astype(np.float32)
    f['t'] = np.array([0, 1, 17, 500, 998, 999], dtype=np.int64)"
    "$binary" predict --checkpoint "$ck" --input "$work/x.h5" --out "$work/eps.h5" >/dev/null
    "$py" scripts/peer/unet.py --compare-predict "$ck" "$work/x.h5" "$work/eps.h5"
  done
  echo "{\"check\":\"ok\",\"models\":\"${model_list[*]}\",\"torch\":\"$torch_pin\",\"venv\":\"$venv\"}"
  ;;
train)
  for model in "${model_list[@]}"; do
    for th in "${thread_list[@]}"; do
      export OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th
      ours=(); theirs=(); ratios=()
      echo "== $model${instance:+ ($instance)}, batch $batch, $th thread(s), $steps timed steps after $warmup, conv $conv"
      for r in $(seq "$rounds"); do
        quiet
        "$binary" bench --model "$model" "${instance_args[@]}" --batch-size "$batch" --threads "$th" --steps "$steps" --warmup "$warmup" \
          --conv-algorithm "$conv" > "$work/bench"
        ours+=("$(tail -1 "$work/bench" | field img_per_s)"); peak=$(tail -1 "$work/bench" | field sgemm_peak_gflops)
        # "sgemm peak: … (OpenBLAS 0.3.21 … DYNAMIC_ARCH NO_AFFINITY Prescott MAX_THREADS=64)": the core it chose
        core=$(grep -m1 'sgemm peak' "$work/bench" | grep -oE '[A-Za-z0-9]+ MAX_THREADS' | cut -d' ' -f1 || true)
        quiet
        j=$("$py" scripts/peer/bench_step.py --model "$model" "${instance_args[@]}" --batch-size "$batch" --threads "$th" --steps "$steps" \
              --warmup "$warmup" | tail -1)
        theirs+=("$(echo "$j" | field img_per_s)")
        ratios+=("$(awk -v a="${ours[-1]}" -v b="${theirs[-1]}" 'BEGIN { printf "%.4f", a / b }')")
        echo "round $r: disttrain ${ours[-1]} img/s (OpenBLAS ${core:-?}, sgemm peak $peak GFLOP/s), pytorch ${theirs[-1]} img/s, ratio ${ratios[-1]}"
      done
      mo=$(median "${ours[@]}"); mt=$(median "${theirs[@]}"); mr=$(median "${ratios[@]}")
      echo "median: disttrain $mo img/s, pytorch $mt img/s, ratio $mr"
      results+=("$(printf '{"mode":"train","model":"%s","instance":"%s","batch":%d,"threads":%d,"steps":%d,"warmup":%d,"rounds":%d,"conv_algorithm":"%s","openblas_core":"%s","sgemm_peak_gflops":%s,"disttrain_img_per_s":%s,"pytorch_img_per_s":%s,"median_ratio":%s,"torch":"%s"}' \
        "$model" "$instance" "$batch" "$th" "$steps" "$warmup" "$rounds" "$conv" "${core:-unknown}" "$peak" "$mo" "$mt" "$mr" "$torch_pin")")
    done
  done
  ;;
sample)
  for model in "${model_list[@]}"; do
    for th in "${thread_list[@]}"; do
      export OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th
      ck=$(checkpoint "$model")
      ours=(); raw=(); theirs=(); ratios=()
      echo "== sample: $model, $count images, DDIM $ddim steps, $th thread(s), conv $conv"
      run() { "$binary" sample --checkpoint "$ck" --count "$count" --batch-size "$count" --sampler ddim \
                --sampler-steps "$ddim" --threads "$th" --conv-algorithm "$conv" --out "$work/grid.png"; }
      for r in $(seq "$rounds"); do
        quiet; tfull=$(wall run)
        quiet
        j=$("$py" scripts/peer/bench_step.py --sample --model "$model" --count "$count" --sampler-steps "$ddim" --threads "$th" | tail -1)
        raw+=("$tfull")
        ours+=("$(grep -oE 'sampling took [0-9.]+' "$work/out" | awk '{ print $3 }')")
        theirs+=("$(echo "$j" | field seconds)")
        ratios+=("$(awk -v a="${ours[-1]}" -v b="${theirs[-1]}" 'BEGIN { printf "%.4f", b / a }')")
        echo "round $r: disttrain ${ours[-1]} s (wall $tfull s), pytorch ${theirs[-1]} s, ratio ${ratios[-1]}"
      done
      mo=$(median "${ours[@]}"); mw=$(median "${raw[@]}"); mt=$(median "${theirs[@]}"); mr=$(median "${ratios[@]}")
      echo "median: disttrain $mo s (wall $mw s), pytorch $mt s, ratio (pytorch s / disttrain s) $mr"
      results+=("$(printf '{"mode":"sample","model":"%s","count":%d,"sampler_steps":%d,"threads":%d,"rounds":%d,"conv_algorithm":"%s","disttrain_s":%s,"disttrain_wall_s":%s,"pytorch_s":%s,"median_ratio":%s,"torch":"%s"}' \
        "$model" "$count" "$ddim" "$th" "$rounds" "$conv" "$mo" "$mw" "$mt" "$mr" "$torch_pin")")
    done
  done
  ;;
esac
if [ "${#results[@]}" -eq 1 ]; then echo "${results[0]}"
elif [ "${#results[@]}" -gt 1 ]; then (IFS=,; echo "{\"configurations\":[${results[*]}]}"); fi
