#!/usr/bin/env bash
# Guard benchmark under the real MicroPython WebAssembly interpreter (needs node and
# ./test.sh's node_modules): seals examples/watermeter with fieldseal's build code, then
# measures in one interpreter
#   - verified import (hash every file, keep module bytes, import through the verifying
#     mount) against a plain import of the same .mpy files: ratio, target <= 1.5x;
#   - heap the guard allocates with the GC off (an upper bound on its peak): the streaming
#     scheduled check, and the boot measurement beyond the module bytes it keeps;
#     target <= 16 KiB beyond the largest file.
# Usage: bench/guard.sh [go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench '^BenchmarkGuard$' -benchtime=1x "$@" ./device/micropython/mpharness/ 2>&1 \
  | grep -v '\[mp\]' | grep -E 'Benchmark|bench_test|ok|FAIL'
