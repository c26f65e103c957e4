#!/usr/bin/env bash
# The one command that runs every fieldseal test: ./test.sh
# It installs what the tests need (Go modules, the pinned Node.js packages for the
# MicroPython interpreter and mpy-cross) and then runs the whole suite.
# Under CI=true a test that would skip for a missing tool or service fails instead.
set -euo pipefail
cd "$(dirname "$0")"

if command -v npm >/dev/null 2>&1; then
  if [ ! -d node_modules/@micropython/micropython-webassembly-pyscript ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "test.sh: installing pinned Node.js packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
else
  echo "test.sh: npm not found: MicroPython and mpy-cross tests will skip (fail under CI=true)"
fi

go mod download
go vet ./...
go test -count=1 -timeout 30m "$@" ./...
