#!/usr/bin/env bash
# Weak scaling of data-parallel training on this machine: `disttrain bench` with 1 rank, then with
# N ranks (same per-rank batch, 1 thread each), alternated R times; prints each run's per-rank img/s
# and exposed allreduce time, then the medians and the efficiency (N-rank per-rank img/s over 1-rank).
#   scripts/bench-scaling.sh [--model cnn-large] [--batch-size 8] [--ranks 2] [--repeats 3] [--steps 6] [-- extra bench options]
set -euo pipefail
cd "$(dirname "$0")/.."
model=cnn-large; batch=8; ranks=2; repeats=3; steps=6; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;; --batch-size) batch=$2; shift 2 ;; --ranks) ranks=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;; --steps) steps=$2; shift 2 ;; --) shift; extra=("$@"); break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
binary=.build/release/disttrain
[ -x "$binary" ] || swift build -c release >/dev/null

# Wait (up to 60 s) until the CPUs are ≥ 93 % idle: another process skews these timings 2–4×.
quiet() {
  for _ in $(seq 60); do
    read -r _ u n s i w q sq st _ < /proc/stat; a1=$((u+n+s+i+w+q+sq+st)); i1=$i; sleep 1
    read -r _ u n s i w q sq st _ < /proc/stat; a2=$((u+n+s+i+w+q+sq+st))
    [ $(( 100*(i-i1)/(a2-a1) )) -ge 93 ] && return
  done
  echo "warning: machine not quiet" >&2
}
field() { grep -oE "\"$1\":[0-9.e-]+" | head -1 | cut -d: -f2; }

one=(); many=(); waits=()
for r in $(seq "$repeats"); do
  quiet
  j=$(mpirun -np 1 "$binary" bench --model "$model" --batch-size "$batch" --threads 1 --steps "$steps" "${extra[@]}" | tail -1)
  one+=("$(echo "$j" | field img_per_s_per_rank)")
  quiet
  j=$(mpirun -np "$ranks" "$binary" bench --model "$model" --batch-size "$batch" --threads 1 --steps "$steps" "${extra[@]}" | tail -1)
  many+=("$(echo "$j" | field img_per_s_per_rank)"); waits+=("$(echo "$j" | field allreduce_wait_s)")
  echo "run $r: 1 rank ${one[-1]} img/s; $ranks ranks ${many[-1]} img/s per rank, allreduce wait ${waits[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m1=$(median "${one[@]}"); mn=$(median "${many[@]}"); mw=$(median "${waits[@]}")
echo "median: 1 rank $m1 img/s; $ranks ranks $mn img/s per rank; exposed allreduce $mw s/step"
awk -v a="$m1" -v b="$mn" -v n="$ranks" -v m="$model" -v bs="$batch" \
  'BEGIN { printf "{\"model\":\"%s\",\"batch_per_rank\":%d,\"ranks\":%d,\"weak_scaling_efficiency\":%.4f}\n", m, bs, n, b / a }'
