#!/usr/bin/env bash
# The project's test command: installs missing packages, builds everything, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps
# why: a singleton MPI_Init forks a helper that inherits open HDF5 files and their locks.
export HDF5_USE_FILE_LOCKING=FALSE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
swift build --build-tests
# The command-line tests train real models under mpirun: they run the optimised binary.
swift build -c release
export DISTTRAIN_BINARY="$PWD/.build/release/disttrain"
swift test --skip-build "$@"
