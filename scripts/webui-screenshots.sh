#!/bin/sh
# Regenerates the web UI's screenshots in docs/screenshots/ (referenced from
# the README) with headless Chromium: the UI tests save a PNG of each page
# they check when $AGORA_WEBUI_SCREENSHOTS names a directory. The fixture
# test runs first; the tests against a real cluster then replace its
# agents and task pages with a live cluster's and add the overview, offers,
# framework, explain and maintenance pages; the Hadoop framework's test adds
# its jobs page, the Cassandra, lambda, Storm and Spark tests their ring,
# pipeline, topologies and drivers pages. TestLivePages puts its agent's
# work directory at /var/lib/agora/agent (and removes /var/lib/agora after)
# so that the task page shows an installation's sandbox path. Not part of
# the test suite.
set -eu
cd "$(dirname "$0")/.."
out="$(pwd)/docs/screenshots"
mkdir -p "$out"
for t in TestUIInChromium TestLivePages TestCockpitPages; do
	AGORA_WEBUI_SCREENSHOTS="$out" go test -count=1 -timeout 300s -run "^$t\$" ./cluster/webui/
done
# The Hadoop framework's own page, with the jobs of a word count it ran.
AGORA_WEBUI_SCREENSHOTS="$out" go test -count=1 -timeout 300s -run '^TestUIShowsJobsProgressCountersAndAttempts$' ./hadoop/framework/
# The Cassandra ring's page (the framework driven without a master or a
# JVM) and the lambda pipeline's (on its embedded defaults).
AGORA_WEBUI_SCREENSHOTS="$out" go test -count=1 -timeout 300s -run '^TestUIShowsTheRing$' ./cassandra/framework/
AGORA_WEBUI_SCREENSHOTS="$out" go test -count=1 -timeout 300s -run '^TestUIShowsThePipeline$' ./lambda/
# The Storm topologies page (two native topologies) and the Spark drivers page.
AGORA_WEBUI_SCREENSHOTS="$out" go test -count=1 -timeout 300s -run '^TestStormUIShowsNativeTopologies$' ./cmd/agora/
AGORA_WEBUI_SCREENSHOTS="$out" go test -count=1 -timeout 300s -run '^TestUIShowsDriversAndTheirExecutors$' ./spark/dispatcher/
# The error banner is a state of the tasks page, not a page: not in the docs.
rm -f "$out/agora-webui-error.png"
# Screenshots are kept small: the README links them, the repository keeps them.
status=0
for f in "$out"/*.png; do
	size=$(wc -c <"$f")
	if [ "$size" -gt 204800 ]; then
		echo "$f is $size bytes, over 200 KB" >&2
		status=1
	fi
done
ls -l "$out"
exit $status
