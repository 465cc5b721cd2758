#!/bin/sh
# Makes a Docker Engine answer on /var/run/docker.sock for agora's Docker
# containerizer tests. Idempotent: does nothing when an engine already answers.
# Otherwise installs Debian's engine (docker.io) when dockerd is missing and
# starts dockerd in the background (log: /var/log/agora-dockerd.log), then
# waits, bounded, until it answers. Exits non-zero with the reason when no
# engine can run: the Docker tests then fail loudly rather than skip.
set -eu

sock=/var/run/docker.sock
log=/var/log/agora-dockerd.log

answers() {
	# The engine's /_ping over its socket, with curl or else the docker CLI.
	if command -v curl >/dev/null 2>&1; then
		curl -fs --max-time 5 --unix-socket "$sock" http://docker/_ping >/dev/null 2>&1
	elif command -v docker >/dev/null 2>&1; then
		timeout 5 docker -H "unix://$sock" version >/dev/null 2>&1
	else
		return 1
	fi
}

if answers; then
	echo "install-docker: an engine answers on $sock"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-docker: no Docker Engine answers on $sock and starting one needs root" >&2
	exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-cache show docker.io >/dev/null 2>&1; then
		apt-get update -qq
	fi
	# docker.io replaces a conflicting client package (docker-ce-cli, moby-cli)
	# if one is installed.
	apt-get install -y -qq docker.io >/dev/null
fi

if pgrep -x dockerd >/dev/null 2>&1; then
	echo "install-docker: a dockerd runs but does not answer on $sock yet; waiting for it"
else
	echo "install-docker: starting dockerd (log: $log)"
	# setsid: the engine outlives this script and the make that ran it.
	setsid dockerd >>"$log" 2>&1 </dev/null &
fi
i=0
while [ $i -lt 120 ]; do
	if answers; then
		echo "install-docker: dockerd answers on $sock"
		exit 0
	fi
	sleep 0.5
	i=$((i + 1))
done
echo "install-docker: dockerd did not answer on $sock within 60 s; its log ends:" >&2
tail -n 20 "$log" >&2 || true
exit 1
