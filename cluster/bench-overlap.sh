#!/usr/bin/env bash
# How much of the gradient allreduce the overlap hides over a slow link (root): two local hosts from
# cluster/netns-hosts.sh with the veth rate-limited, one rank on each, TCP only; `disttrain bench`
# with the overlap and with --no-overlap, alternated R times; prints each run's median step time and
# exposed allreduce time, then the medians of both and the share of communication hidden.
#   cluster/bench-overlap.sh [--rate 1gbit] [--model cnn] [--batch-size 8] [--repeats 3] [--steps 8] [-- extra bench options]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=1gbit; model=cnn; batch=8; repeats=3; steps=8; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate=$2; shift 2 ;; --model) model=$2; shift 2 ;; --batch-size) batch=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;; --steps) steps=$2; shift 2 ;; --) shift; extra=("$@"); break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
binary=$PWD/.build/release/disttrain
[ -x "$binary" ] || swift build -c release >/dev/null
export DISTTRAIN_NETNS_PREFIX=${DISTTRAIN_NETNS_PREFIX:-dtb}
cluster/netns-hosts.sh down
cluster/netns-hosts.sh up "$rate"
trap 'cluster/netns-hosts.sh down' EXIT
field() { grep -oE "\"$1\":[0-9.e-]+" | head -1 | cut -d: -f2; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

on=(); off=(); on_wait=(); off_wait=()
for r in $(seq "$repeats"); do
  for mode in on off; do
    flag=(); [ $mode = off ] && flag=(--no-overlap)
    j=$(cluster/netns-hosts.sh mpirun -np 2 --host "${DISTTRAIN_NETNS_PREFIX}1,${DISTTRAIN_NETNS_PREFIX}2" --mca btl tcp,self \
        "$binary" bench --model "$model" --batch-size "$batch" --threads 1 --steps "$steps" "${flag[@]}" "${extra[@]}" | tail -1)
    step=$(echo "$j" | field median_step_s); wait=$(echo "$j" | field allreduce_wait_s)
    if [ $mode = on ]; then on+=("$step"); on_wait+=("$wait"); else off+=("$step"); off_wait+=("$wait"); fi
    echo "run $r, overlap $mode: step $step s, exposed allreduce $wait s"
  done
done
a=$(median "${on[@]}"); aw=$(median "${on_wait[@]}"); b=$(median "${off[@]}"); bw=$(median "${off_wait[@]}")
echo "median over $rate: overlap step $a s (exposed $aw s); --no-overlap step $b s (exposed $bw s)"
awk -v aw="$aw" -v bw="$bw" -v a="$a" -v b="$b" -v rate="$rate" -v model="$model" 'BEGIN {
  printf "{\"model\":\"%s\",\"rate\":\"%s\",\"step_s_overlap\":%s,\"step_s_no_overlap\":%s,\"exposed_s_overlap\":%s,\"exposed_s_no_overlap\":%s,\"hidden_share\":%.3f}\n",
    model, rate, a, b, aw, bw, (bw > 0 ? 1 - aw / bw : 0) }'
