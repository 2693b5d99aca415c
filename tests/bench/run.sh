#!/usr/bin/env bash
# `make bench`: runs the benchmark scenarios (tests/bench/bench.py) against
# the binaries in $BUILD. BENCH_SMOKE=1 is the quick delivery check that
# `make check` runs; BENCH_MODE=max searches each scenario's highest clean
# rate; BENCH_SECONDS and BENCH_ONLY (grpc,http-proto,http-json,
# forward,forward-grpc,idle, proc-traces-chain or a prefix like proc-*) narrow a run.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/bench/bench.py --build "$BUILD" "$@"
