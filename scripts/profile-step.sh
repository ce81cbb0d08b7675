#!/usr/bin/env bash
# Where a training step's time goes, by pass: perf samples of `disttrain bench` (after a delay that
# skips start-up), grouped into the step's passes, as shares of the step. Run on a quiet machine.
#   scripts/profile-step.sh [MODEL] [STEPS] [extra bench options]     e.g. scripts/profile-step.sh cnn 60 --threads 2
# Needs perf (Debian: linux-perf) and a release build; as root, or with kernel.perf_event_paranoid ≤ 1.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-cnn-large}; steps=${2:-12}; shift $(( $# < 2 ? $# : 2 ))
binary=${DISTTRAIN_BINARY:-.build/release/disttrain}
command -v perf >/dev/null || { echo "profile-step: perf is required (apt-get install linux-perf)" >&2; exit 1; }
[ -x "$binary" ] || { echo "profile-step: no $binary (swift build -c release)" >&2; exit 1; }
data=$(mktemp /tmp/profile-step.XXXXXX)
trap 'rm -f "$data" "$data.old"' EXIT
# why the delay: building the model and its first-touch page faults are not part of a step.
delay=$([ "$model" = cnn-large ] && echo 6000 || echo 3000)
perf record -q -o "$data" -D "$delay" -F 2000 "$binary" bench --model "$model" --steps "$steps" "$@" 2>/dev/null | tail -1
perf report -i "$data" --no-children --sort symbol --percent-limit 0 2>/dev/null | awk '
  /^#/ || NF < 3 { next }
  {
    share = $1; sub("%", "", share); s = $3
    if ($2 == "[k]") p = "kernel (os)"
    else if (s ~ /sgemm_kernel/) p = "sgemm: kernel"
    else if (s ~ /sgemm_.*copy|sgemm_beta|sgemm_(nn|nt|tn)$/) p = "sgemm: packing"
    else if (s ~ /transformFilters|winogradFilters/) p = "winograd: filter transform"
    else if (s ~ /addFilterGradient|winogradFilterGradient/) p = "winograd: filter-gradient transform"
    else if (s ~ /transformInput|transformOutputGradient|winogradTransformPlanes/) p = "winograd: input & output-gradient transforms"
    else if (s ~ /transformOutput|winogradOutput/) p = "winograd: output transform (+ BN sums)"
    else if (s ~ /addInputGradient|winogradInputGradient/) p = "winograd: input-gradient transform"
    else if (s ~ /memmove|memcpy/) p = "copies (Winograd padding, layout)"
    else if (s ~ /memset/) p = "zeroing (gradients, sgemm beta = 0)"
    else if (s ~ /batchNorm.*Forward|channelMoments/) p = "batchnorm forward (+ time add)"
    else if (s ~ /batchNorm.*Backward|preActivationGradientSums/) p = "batchnorm backward"
    else if (s ~ /addPerChannel/) p = "time add (separate passes)"
    else if (s ~ /upsample/) p = "upsample"
    else if (s ~ /maxPool/) p = "max-pool"
    else if (s ~ /Adam/) p = "adam (+ EMA, zeroing)"
    else if (s ~ /l2Norm/) p = "gradient norm"
    else if (s ~ /im2col|col2im/) p = "im2col"
    else if (s ~ /addChannelSums/) p = "bias gradients"
    else if (s ~ /Philox/) p = "noise"
    else p = "other"
    total[p] += share
  }
  END { for (p in total) printf "%6.2f %%  %s\n", total[p], p }' | sort -rn
