#!/usr/bin/env bash
# Installs what agora needs, only when missing (idempotent).
#   scripts/deps.sh        what `make run` needs: the Go modules.
#   scripts/deps.sh test   what `make test` needs as well: Chromium (web UI
#                          tests), a running Docker Engine, busybox-static
#                          (the Docker tests' image), a JDK and Maven, and the
#                          upstream engines the real-engine tests run,
#                          assembled from Maven Central by `agora dist install`
#                          into its cache (~/.cache/agora/dist).
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
"$go" mod download
[ "${1:-}" = test ] || exit 0

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

sh scripts/install-chromium.sh >&2
sh scripts/install-docker.sh >&2
# busybox-static: the Docker tests build their image from /bin/busybox.
[ -x /bin/busybox ] || apt_install busybox-static >&2
# The engines run on Java 17; Maven assembles them.
command -v java >/dev/null 2>&1 || apt_install openjdk-17-jdk-headless >&2
command -v mvn >/dev/null 2>&1 || apt_install maven >&2
CGO_ENABLED=0 "$go" build -o bin/agora ./cmd/agora
bin/agora dist install hadoop hdfs >/dev/null
