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
log=$(mktemp)
set +e
swift test --skip-build "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain summary line from Swift Testing's own count (greps that find nothing must not end the script).
summary=$(grep -E "Test run with [0-9]+ tests" "$log" | tail -1 || true)
total=$(echo "$summary" | grep -oE "with [0-9]+ tests" | grep -oE "[0-9]+" || true)
failed_tests=$( (grep -E "^✘ Test " "$log" || true) | (grep -oE "Test [^ (]+\(" || true) | sort -u | wc -l)
rm -f "$log"
total=${total:-0}
echo "$((total - failed_tests)) passed, $failed_tests failed"
exit "$status"
