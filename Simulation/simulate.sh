#!/usr/bin/env bash
# Builds ted-sim (release) and runs the cold start and the hub restart of a mesh of N
# branches and 10 hubs (docs/SCALE.md): the tables on stdout, the CSV files in
# Simulation/.build/out-N, wall time and peak memory from /usr/bin/time on stderr.
# Usage: Simulation/simulate.sh N [ted-sim options, e.g. --seed 7 --loss 0.1]
# Exits non-zero when the build fails or a run's invariants do not hold.
set -euo pipefail
cd "$(dirname "$0")"
branches=${1:?usage: simulate.sh N [ted-sim options]}
shift
# The build's progress goes to stderr: stdout is the tables alone.
swift build -c release --product ted-sim >&2
sim=.build/release/ted-sim
out=.build/out-$branches
timed() {
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "simulate.sh: %e s wall, %M KB peak" "$@"
  else
    "$@"
  fi
}
# The hub restart runs the cold start first and prints its table too.
timed "$sim" hub-restart --branches "$branches" --out "$out" "$@"
