#!/usr/bin/env bash
# Benchmark (not a test): how many meters one machine sustains at a 15-minute report
# interval, server included. Provisions METERS real devices (keys, evidence log, server
# record), then runs them on a virtual clock at increasing SPEEDS and prints, per speed,
# the meter-equivalents (meters × speed), offered and achieved reports/s, report lateness,
# CPU (cores busy) and resident memory. Method and caveats: bench/fleet/main.go.
#
#   bench/fleet.sh                       # METERS=100000 MQTT=5000 SPEEDS=1,8,16,32 LEVEL=20s
#   METERS=20000 SPEEDS=1,8,64 bench/fleet.sh
#
# Bounded: the whole run is killed after LIMIT (default 180 s).
set -euo pipefail
cd "$(dirname "$0")/.."
METERS=${METERS:-100000}
MQTT=${MQTT:-5000}
SPEEDS=${SPEEDS:-1,8,16,32}
LEVEL=${LEVEL:-20s}
LIMIT=${LIMIT:-180}
BIN=$(mktemp -d)/fleet
trap 'rm -rf "$(dirname "$BIN")"' EXIT
go build -o "$BIN" ./bench/fleet
timeout --foreground "$LIMIT" "$BIN" -meters "$METERS" -mqtt "$MQTT" -speeds "$SPEEDS" -level "$LEVEL"
