#!/usr/bin/env bash
# Installs what agora needs, only when missing (idempotent).
#   scripts/deps.sh        what `make run` needs: the Go modules, and musl
#                          (Debian's musl-tools) for the container init if
#                          it can be installed.
#   scripts/deps.sh test   what `make test` needs as well: Chromium (web UI
#                          tests), a running Docker Engine, busybox-static
#                          (the Docker tests' image), a C compiler (the C
#                          container init), tmux, zsh and dig (the
#                          terminal, completion and DNS tests), a JDK and Maven,
#                          ZooKeeper (Debian's package), and the
#                          upstream engines the real-engine tests run,
#                          assembled from Maven Central by `agora dist install`
#                          into its cache (~/.cache/agora/dist), and Spark's
#                          cluster manager for agora (spark/jvm, Maven) into
#                          ~/.cache/agora/spark-jvm, PySpark (pip, from
#                          PyPI) into the Spark home, and Marathon's Python
#                          client library into ~/.cache/agora/pip.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
"$go" mod download

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

# musl: `make build` links the container init (bin/agora-init) with it when
# it is there, for a cheaper start of every container; without it, glibc.
command -v musl-gcc >/dev/null 2>&1 || apt_install musl-tools >&2 ||
	echo "deps: musl-gcc could not be installed: the container init is linked with glibc" >&2
[ "${1:-}" = test ] || exit 0

sh scripts/install-chromium.sh >&2
# Without a Docker Engine the docker tier is skipped on a developer's machine;
# in CI (CI=true) every tier is required, so the run stops here.
if ! sh scripts/install-docker.sh >&2; then
	[ "${CI:-}" = true ] && exit 1
	echo "deps: no Docker Engine: the docker tier of the tests will be skipped" >&2
fi
# busybox-static: the Docker tests build their image from /bin/busybox.
[ -x /bin/busybox ] || apt_install busybox-static >&2
# tmux and zsh: `agora top` is tested under a terminal, the zsh completion
# script is checked by zsh itself.
command -v tmux >/dev/null 2>&1 || apt_install tmux >&2
command -v zsh >/dev/null 2>&1 || apt_install zsh >&2
# dig: the DNS test asks agora's Mesos-DNS names with dig itself.
command -v dig >/dev/null 2>&1 || apt_install dnsutils >&2
# The engines run on Java 17 or later; Maven assembles them.
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
	apt_install openjdk-17-jdk-headless >&2 || apt_install default-jdk-headless >&2
fi
command -v mvn >/dev/null 2>&1 || apt_install maven >&2
# A C compiler and a static C library: `make build` compiles the container
# init (bin/agora-init) in C, and the root+cgroups tier tests that init.
command -v cc >/dev/null 2>&1 && [ -f /usr/lib/"$(gcc -dumpmachine 2>/dev/null)"/libc.a ] || apt_install gcc libc6-dev >&2
# ZooKeeper: the high-availability tests run real servers from Debian's
# package (its jar; no service is started).
[ -f /usr/share/java/zookeeper.jar ] || apt_install zookeeper >&2
CGO_ENABLED=0 "$go" build -o bin/agora ./cmd/agora
bin/agora dist install hadoop hdfs storm spark cassandra kafka >/dev/null
# The only JVM code of agora: the jar Spark loads to get executors as agora tasks.
bin/agora spark cluster-manager >/dev/null
# PySpark's Python packages (pinned; pip downloads once into ~/.cache/agora/pip).
bin/agora spark pyspark >/dev/null
# Marathon's Python client and what it imports (pinned wheels, into the same
# cache): the test that checks they load downloads them.
# CI=true: a machine without python3 or pip fails here, naming why, rather
# than skipping the download.
if ! out=$(CI=true "$go" test -count=1 -timeout 900s -run '^TestPythonClientPins$' ./frameworks/marathon/ 2>&1); then
	printf '%s\n' "$out" >&2
	echo "deps: could not download Marathon's pinned Python client (python3 -m pip, from PyPI)" >&2
	exit 1
fi
