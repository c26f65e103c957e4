#!/usr/bin/env bash
# Benchmark of `fieldseal verify` (not a test): builds a tree of 10,000 files / 1 GiB under
# /tmp, seals it, and prints in one table, with the page cache warm:
#   - fieldseal verify throughput (wall time of the whole command, signature check included);
#   - sha256sum over the same files (find | xargs sha256sum), the baseline an operator has;
#   - Go's single-core SHA-256 speed on this machine, and what N cores could do at most.
# Targets: verify ≥ 1.6× sha256sum and ≥ 80% of N cores' SHA-256 speed (N = nproc, ≤ 2 here).
#
#   bench/verify.sh            # FILES=10000 BYTES=1073741824 RUNS=3 BENCH_DIR=/tmp/fieldseal-bench
#
# The tree is kept between runs (delete BENCH_DIR to rebuild it).
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${FILES:-10000}
BYTES=${BYTES:-1073741824}
RUNS=${RUNS:-3}
DIR=${BENCH_DIR:-/tmp/fieldseal-bench}
CORES=$(nproc)
mkdir -p "$DIR"

echo "bench: building fieldseal" >&2
go build -o "$DIR/fieldseal" ./cmd/fieldseal

# Helpers in Go (stdlib only): the tree generator and the single-core SHA-256 benchmark.
cat > "$DIR/gen.go" <<'GO'
package main

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

func main() {
	switch os.Args[1] {
	case "tree": // tree DIR FILES BYTES: FILES files of BYTES/FILES ± 50% bytes, 100 per folder
		dir := os.Args[2]
		n, _ := strconv.Atoi(os.Args[3])
		total, _ := strconv.ParseInt(os.Args[4], 10, 64)
		r := rand.New(rand.NewPCG(1, 2))
		avg := total / int64(n)
		sizes := make([]int64, n)
		for i := 0; i+1 < n; i += 2 { // pairs of avg ± d: exactly BYTES in all
			d := r.Int64N(avg+1) - avg/2
			sizes[i], sizes[i+1] = avg+d, avg-d
		}
		if n%2 == 1 {
			sizes[n-1] = avg
		}
		sizes[n-1] += total - avg*int64(n)
		buf := make([]byte, 4<<20)
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		for i, sz := range sizes {
			p := filepath.Join(dir, fmt.Sprintf("d%03d", i/100), fmt.Sprintf("f%05d.bin", i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			f, err := os.Create(p)
			if err != nil {
				panic(err)
			}
			off := int64(i*7919) % int64(len(buf)/2)
			for sz > 0 {
				k := min(sz, int64(len(buf))-off)
				f.Write(buf[off : off+k])
				sz -= k
				off = 0
			}
			f.Close()
		}
	case "sha": // sha N: SHA-256 speed in MiB/s of N goroutines hashing 1 MiB blocks in memory for ~2 s
		n, _ := strconv.Atoi(os.Args[2])
		var wg sync.WaitGroup
		var mu sync.Mutex
		blocks := 0
		start := time.Now()
		for g := 0; g < n; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 1<<20)
				h := sha256.New()
				c := 0
				for time.Since(start) < 2*time.Second {
					h.Write(buf)
					c++
				}
				h.Sum(nil)
				mu.Lock()
				blocks += c
				mu.Unlock()
			}()
		}
		wg.Wait()
		fmt.Printf("%.0f\n", float64(blocks)/time.Since(start).Seconds())
	}
}
GO

SRC="$DIR/src"
if [ ! -f "$DIR/.tree-$FILES-$BYTES" ]; then
  echo "bench: writing $FILES files, $BYTES bytes to $SRC" >&2
  rm -rf "$SRC" "$DIR/dist"
  mkdir -p "$SRC"
  go run "$DIR/gen.go" tree "$SRC" "$FILES" "$BYTES"
  "$DIR/fieldseal" keygen --out "$DIR/bench.key" --force >/dev/null
  echo "bench: sealing it (fieldseal build)" >&2
  "$DIR/fieldseal" build "$SRC" --key "$DIR/bench.key" --out "$DIR/dist" --created 1700000000 >&2
  touch "$DIR/.tree-$FILES-$BYTES"
fi
APP="$DIR/dist/app"
MAN="$DIR/dist/manifest.cose"
PUB="$DIR/bench.key.pub"
MIB=$(awk "BEGIN{print $BYTES/1048576}")

now() { date +%s.%N; }
# best TIME of RUNS runs of the command, after one warm-up run that fills the page cache
best() {
  "$@" >/dev/null
  local b=""
  for _ in $(seq "$RUNS"); do
    local s e d
    s=$(now); "$@" >/dev/null; e=$(now)
    d=$(awk "BEGIN{print $e-$s}")
    if [ -z "$b" ] || awk "BEGIN{exit !($d<$b)}"; then b=$d; fi
  done
  echo "$b"
}

echo "bench: timing (best of $RUNS, warm cache)" >&2
T_VERIFY=$(best "$DIR/fieldseal" verify "$APP" --manifest "$MAN" --pub "$PUB")
T_SUM=$(best sh -c "cd '$APP' && find . -type f -print0 | xargs -0 sha256sum")
go build -o "$DIR/gen" "$DIR/gen.go"
GO_SHA=$("$DIR/gen" sha 1)
GO_SHA_N=$("$DIR/gen" sha "$CORES")

awk -v mib="$MIB" -v tv="$T_VERIFY" -v ts="$T_SUM" -v gs="$GO_SHA" -v gsn="$GO_SHA_N" -v cores="$CORES" -v files="$FILES" -v loadavg="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
  v = mib / tv; s = mib / ts; n = gs * cores
  printf "\n%d files, %.0f MiB, %d cores, page cache warm, load average %s\n\n", files, mib, cores, loadavg
  printf "%-42s %10s %10s\n", "what", "seconds", "MiB/s"
  printf "%-42s %10.2f %10.0f\n", "fieldseal verify", tv, v
  printf "%-42s %10.2f %10.0f\n", "find | xargs sha256sum", ts, s
  printf "%-42s %10s %10.0f\n", "Go SHA-256, one core (in memory)", "-", gs
  printf "%-42s %10s %10.0f\n", sprintf("Go SHA-256, %d cores (measured, in memory)", cores), "-", gsn
  printf "%-42s %10s %10.0f\n", sprintf("Go SHA-256, %d x one core (ideal)", cores), "-", n
  printf "\nverify / sha256sum               %5.2fx   (target >= 1.6x)   %s\n", v / s, (v / s >= 1.6 ? "ok" : "MISSED")
  printf "verify / %d x one-core SHA-256  %5.0f%%   (target >= 80%%)    %s\n", cores, 100 * v / n, (v / n >= 0.8 ? "ok" : "MISSED")
  printf "verify / %d-core SHA measured     %5.0f%%\n", cores, 100 * v / gsn
}'
