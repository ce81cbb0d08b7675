#!/usr/bin/env bash
# Installs what disttrain needs on Debian 12 (when missing) and builds it.
#   scripts/setup.sh            packages + release build (.build/release/disttrain)
#   scripts/setup.sh --deps     packages only
#   scripts/setup.sh --fashion-mnist   also Debian's dataset-fashion-mnist (the default data of run.sh and the recipe)
set -euo pipefail
cd "$(dirname "$0")/.."

# why fonts-noto-color-emoji: it is data, the emoji set of `prepare --source emoji` (and its tests).
packages=(libopenmpi-dev openmpi-bin libopenblas-dev libhdf5-dev hdf5-tools libpng-dev zlib1g-dev libgif-dev pkg-config
          fonts-noto-color-emoji)
deps_only=false
for argument in "$@"; do
  case "$argument" in
    --deps) deps_only=true ;;
    --fashion-mnist) packages+=(dataset-fashion-mnist) ;;
    *) echo "setup: unknown option $argument" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift 6 is required on PATH (https://www.swift.org/install)" >&2; exit 1; }

$deps_only && exit 0
swift build -c release
