#!/usr/bin/env bash
# The whole test suite (`make test` after `make deps`): vet, then every
# package's tests, printed as plain `go test` prints them plus the reason of
# every skipped test and a closing "N passed, N failed, N skipped" line.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
"$go" vet ./...
"$go" build -o bin/testsummary ./scripts/testsummary
"$go" test -count=1 -timeout 20m -json "${@:-./...}" 2>&1 | bin/testsummary
