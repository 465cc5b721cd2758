#!/usr/bin/env bash
# Installs what agora's tests need, only when missing: Go modules, and the
# Debian packages the real-component tests use (chromium for the web UI).
set -euo pipefail
cd "$(dirname "$0")/.."
go mod download
sh scripts/install-chromium.sh >&2
# busybox-static: the Docker tests build their image from /bin/busybox.
[ -x /bin/busybox ] || { apt-get install -y busybox-static || { apt-get update && apt-get install -y busybox-static; }; } >&2
