#!/usr/bin/env bash
# Word count on real Hadoop 1.2.1 TaskTrackers against agora's native Hadoop
# framework: same agents, same corpus, same Streaming scripts.
#
#   scripts/bench-hadoop-real.sh [SIZE]      (default 1GiB; e.g. 256MiB)
#
# Starts `agora dev --agents 2` on spare ports, runs `agora bench hadoop
# wordcount --keep` (the native job and its pipeline baseline), then launches a
# real JobTracker (`agora hadoop jobtracker`) and two TaskTrackers (`agora hadoop
# tasktrackers`) from `agora dist install hadoop`, runs the same job with
# hadoop-streaming-1.2.1.jar on the kept input, checks its counts against the
# pipeline's, and prints both times. Needs Java 17 and Maven (make test-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1GiB}
bin=$PWD/bin/agora
port=${AGORA_BENCH_PORT:-16050}
hport=$((port - 20))
work=$(mktemp -d -p /var/tmp agora-bench-real-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
home=$("$bin" dist install hadoop)
"$bin" dev --agents 2 --port "$port" --hadoop_port "$hport" --work_dir "$work/dev" >"$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done
export AGORA_MASTER=127.0.0.1:$port

echo "native: agora bench hadoop wordcount --size $size" >&2
"$bin" bench hadoop wordcount --hadoop "127.0.0.1:$hport" --size "$size" --keep --dir "$work" --json >"$work/native.json"
dir=$(ls -d "$work"/hadoop-wordcount-*)
native=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["seconds"], r["baseline_seconds"], r["maps"], r["reduces"])' "$work/native.json")
read -r native_s pipeline_s maps reduces <<<"$native"

"$bin" hadoop jobtracker --hadoop_home="$home" -D agora.hadoop.jobtracker.cpus=0.2 \
	-D agora.hadoop.jobtracker.mem=512 -D mapred.system.dir="$work/mapred/system" \
	-D mapreduce.jobtracker.staging.root.dir="$work/mapred/staging" >"$work/jt.out" 2>"$work/jt.log" &
pids+=($!)
for _ in $(seq 120); do grep -q '^jobtracker ' "$work/jt.out" && break; sleep 1; done
jt=$(awk '/^jobtracker /{print $2; exit}' "$work/jt.out")
[ -n "$jt" ] || { echo "no JobTracker came up; its log:" >&2; tail -20 "$work/jt.log" >&2; exit 1; }
echo "real: JobTracker at $jt" >&2
# The agents' slots as the native framework sizes them: 0.2 cpu per slot, 4
# slots (2 map, 2 reduce) per one-CPU agent; JVMs need more memory.
"$bin" hadoop tasktrackers --jobtracker="$jt" --hadoop_home="$home" \
	-D mapred.mesos.tasktracker.cpus=0.2 -D mapred.mesos.tasktracker.mem=384 \
	-D mapred.mesos.slot.cpus=0.2 -D mapred.mesos.slot.mem=400 -D mapred.mesos.slot.disk=0 \
	-D mapred.mesos.tasktracker.disk=0 -D agora.hadoop.executors.minimum=2 \
	-D hadoop.tmp.dir=@MESOS_SANDBOX@/tmp >"$work/tt.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do
	n=$("$home/bin/hadoop" job -jt "$jt" -list-active-trackers 2>/dev/null | grep -c '^tracker_' || true)
	[ "$n" -ge 2 ] && break
	sleep 1
done
echo "real: $n TaskTrackers active; running hadoop-streaming-1.2.1.jar" >&2
start=$(date +%s.%N)
(cd "$dir" && "$home/bin/hadoop" jar "$home/lib/hadoop-streaming-1.2.1.jar" -jt "$jt" \
	-files mapper.py,reducer.py -input "$dir/in" -output "$dir/out-real" \
	-mapper mapper.py -reducer reducer.py -combiner reducer.py -numReduceTasks "$reduces") >"$work/job.log" 2>&1 ||
	{ tail -30 "$work/job.log" >&2; exit 1; }
end=$(date +%s.%N)
real_s=$(python3 -c "print(round($end - $start, 1))")
job=$(grep -o 'job_[0-9]*_[0-9]*' "$work/job.log" | tail -n1 || true)
real_maps=$("$home/bin/hadoop" job -jt "$jt" -status "$job" 2>/dev/null | sed -n 's/.*Launched map tasks=//p' || true)
if LC_ALL=C sort "$dir"/out-real/part-* | cmp -s - <(LC_ALL=C sort "$dir/baseline.txt"); then valid=yes; else valid=NO; fi
printf '%s\n' "size $size  maps: native $maps, real ${real_maps:-?}  reduces $reduces" \
	"native framework  ${native_s} s" \
	"real TaskTrackers ${real_s} s   (counts equal the pipeline's: $valid)" \
	"pipeline baseline ${pipeline_s} s" \
	"native / real throughput: $(python3 -c "print(round($real_s / $native_s, 2))")x"
[ "$valid" = yes ]
