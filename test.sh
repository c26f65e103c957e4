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
# go.mod and go.sum say exactly what the code imports (direct requirements not marked indirect).
if ! go mod tidy -diff >/dev/null; then
  echo "test.sh: go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result" >&2
  go mod tidy -diff >&2 || true
  exit 1
fi
go vet ./...
# staticcheck, pinned (installed from the Go module proxy when missing or another version).
STATICCHECK_VERSION=0.8.2
staticcheck="$(go env GOPATH)/bin/staticcheck"
if ! "$staticcheck" -version 2>/dev/null | grep -q "($STATICCHECK_VERSION)"; then
  echo "test.sh: installing staticcheck v$STATICCHECK_VERSION"
  go install "honnef.co/go/tools/cmd/staticcheck@v$STATICCHECK_VERSION"
fi
"$staticcheck" ./...
go test -count=1 -timeout 30m "$@" ./...
