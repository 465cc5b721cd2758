#!/usr/bin/env bash
# Installs what agora's tests need, only when missing: Go modules, and the
# Debian packages the real-component tests use (chromium for the web UI).
set -euo pipefail
cd "$(dirname "$0")/.."
go mod download
sh scripts/install-chromium.sh >&2
