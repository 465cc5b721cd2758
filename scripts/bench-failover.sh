#!/usr/bin/env bash
# Master failover benchmark: starts a throw-away ZooKeeper server from
# Debian's zookeeper package (the jar at /usr/share/java/zookeeper.jar, or
# the class path in AGORA_ZOOKEEPER_CLASSPATH) on a spare port, runs
# `agora bench failover` against it, and stops it. Arguments go to the bench:
#
#   scripts/bench-failover.sh --agents 10000 --tasks-per-agent 10
#   scripts/bench-failover.sh scale --agents 10000     # runs `agora bench scale` instead
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${AGORA_BIN:-bin/agora}
port=${AGORA_ZK_PORT:-12181}
cp=${AGORA_ZOOKEEPER_CLASSPATH:-/usr/share/java/zookeeper.jar}
bench=failover
if [[ ${1:-} == scale ]]; then bench=scale; shift; fi
work=$(mktemp -d -p /var/tmp agora-zk-XXXXXX)
# tickTime 500 ms: sessions of 1 to 10 s, so the masters' 4 s is granted.
cat >"$work/zoo.cfg" <<CFG
tickTime=500
initLimit=20
syncLimit=10
dataDir=$work/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
maxClientCnxns=0
CFG
java -cp "$cp" -Dzookeeper.log.dir="$work" org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zoo.cfg" >"$work/zookeeper.log" 2>&1 &
zkpid=$!
trap 'kill "$zkpid" 2>/dev/null; wait "$zkpid" 2>/dev/null || true; rm -rf "$work"' EXIT
ruok() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  echo ruok >&3
  local reply
  reply=$(head -c 4 <&3 || true)
  exec 3>&-
  [[ $reply == imok ]]
}
for _ in $(seq 300); do
  ruok 2>/dev/null && break
  kill -0 "$zkpid" 2>/dev/null || { cat "$work/zookeeper.log" >&2; exit 1; }
  sleep 0.1
done
"$bin" bench "$bench" --zk "zk://127.0.0.1:$port/agora" "$@"
