#!/usr/bin/env bash
# Launch benchmark on a throw-away dev cluster: starts `agora dev` on a
# spare port, runs `agora bench launch` against it (saturating, then with
# --max-in-flight 4), and stops the cluster. Extra arguments go to the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/agora
port=${AGORA_BENCH_PORT:-15050}
work=$(mktemp -d -p /var/tmp agora-bench-XXXXXX)
trap 'kill "$dev" 2>/dev/null; wait "$dev" 2>/dev/null; rm -rf "$work"' EXIT
"$bin" dev --agents 2 --port "$port" --work_dir "$work" >"$work/dev.log" 2>&1 &
dev=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
export AGORA_MASTER=127.0.0.1:$port
"$bin" bench launch --tasks 1000 "$@"
"$bin" bench launch --tasks 1000 --max-in-flight 4 "$@"
