#!/bin/sh
# Installs Chromium for agora's web UI tests (cluster/webui, headless via
# chromedp). Idempotent: does nothing when a Chromium or Chrome binary is
# already in PATH (or $AGORA_CHROMIUM names one). Installs the Debian package
# `chromium` when run as root; otherwise prints the command to run.
set -eu

find_browser() {
	if [ -n "${AGORA_CHROMIUM:-}" ] && command -v "$AGORA_CHROMIUM" >/dev/null 2>&1; then
		command -v "$AGORA_CHROMIUM"
		return 0
	fi
	for b in chromium chromium-browser google-chrome google-chrome-stable; do
		if command -v "$b" >/dev/null 2>&1; then
			command -v "$b"
			return 0
		fi
	done
	return 1
}

if path=$(find_browser); then
	echo "install-chromium: found $path"
	exit 0
fi

install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium"

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-chromium: no Chromium found and no apt-get on this system." >&2
	echo "install-chromium: install Chromium or Chrome with your package manager, or set AGORA_CHROMIUM to its path." >&2
	exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-chromium: no Chromium found; installing it needs root. Run:" >&2
	echo "  sudo sh -c '$install_cmd'" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they do not know the package yet.
if ! apt-cache show chromium >/dev/null 2>&1; then
	apt-get update -qq
fi
apt-get install -y -qq chromium >/dev/null

if path=$(find_browser); then
	echo "install-chromium: installed $path"
else
	echo "install-chromium: apt-get installed chromium but no chromium binary is in PATH" >&2
	exit 1
fi
