#!/usr/bin/env bash
# Bounded fuzzing: runs every `func FuzzX(f *testing.F)` in the repository
# (found in the tracked *_test.go files, so a new target runs without being
# listed here) for --fuzztime each, one worker, after building each
# package's fuzz-instrumented test binary once. `make test` runs it.
#
#   scripts/fuzz.sh [--fuzztime 3s] [PACKAGE_DIR...]
#
# FUZZTIME sets the default. A target that finds a failing input fails the
# run and names the new corpus file (PACKAGE/testdata/fuzz/FuzzX/HASH):
# commit it with the fix, and every `go test` checks it from then on.
#
# Go 1.26's coordinator can end a clean run with "context deadline
# exceeded" when -fuzztime elapses mid-execution (golang/go#75804, fixed
# in Go 1.27); such a run, which wrote no input, is counted apart and does
# not fail.
set -uo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
fuzztime=${FUZZTIME:-3s}
dirs=()
while [ $# -gt 0 ]; do
	case "$1" in
	--fuzztime) fuzztime=$2; shift 2 ;;
	--fuzztime=*) fuzztime=${1#*=}; shift ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) dirs+=("${1#./}"); shift ;;
	esac
done

# The targets, as "dir name" lines.
if git rev-parse --git-dir >/dev/null 2>&1; then
	files=$(git ls-files -co --exclude-standard '*_test.go')
else
	files=$(find . -name '*_test.go' -not -path './bin/*' | sed 's|^\./||')
fi
targets=$(grep -H -o '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' $files 2>/dev/null |
	sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' | sort -u)
if [ ${#dirs[@]} -gt 0 ]; then
	targets=$(printf '%s\n' "$targets" | grep -E "^($(IFS='|'; echo "${dirs[*]%/}")) ")
fi
if [ -z "$targets" ]; then
	echo "fuzz: no Fuzz targets found" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cache=$("$go" env GOCACHE)/fuzz
start=$(date +%s)
ran=0 failed=0 flaked=0 broken=0
built=""
while read -r dir name; do
	bin=$tmp/$(echo "$dir" | tr / _).test
	if [ "$built" != "$dir" ]; then
		built=$dir
		if ! "$go" test -c -fuzz=. -o "$bin" "./$dir" >"$tmp/build.log" 2>&1; then
			echo "fuzz: FAIL build ./$dir:"
			cat "$tmp/build.log"
			broken=$((broken + 1))
			continue
		fi
		pkg=$("$go" list "./$dir")
	fi
	[ -x "$bin" ] || { broken=$((broken + 1)); continue; }
	corpus=$dir/testdata/fuzz/$name
	before=$(ls "$corpus" 2>/dev/null)
	t0=$(date +%s)
	(cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^$name\$" -test.fuzztime "$fuzztime" \
		-test.fuzzminimizetime 2s -test.parallel 1 -test.timeout 10m \
		-test.fuzzcachedir "$cache/$pkg") >"$tmp/out" 2>&1
	rc=$?
	ran=$((ran + 1))
	execs=$(grep -o 'execs: [0-9]*' "$tmp/out" | tail -1 | cut -d' ' -f2)
	new=$(comm -13 <(printf '%s\n' "$before") <(ls "$corpus" 2>/dev/null))
	if [ $rc -eq 0 ]; then
		printf 'fuzz: ok   %-28s ./%s  %s execs in %ss\n' "$name" "$dir" "${execs:-0}" $(($(date +%s) - t0))
	elif [ -n "$new" ]; then
		failed=$((failed + 1))
		grep -v '^fuzz: elapsed' "$tmp/out" | tail -40
		for f in $new; do
			echo "fuzz: FAIL $name ./$dir: failing input written to $corpus/$f"
		done
	elif grep -q '^    context deadline exceeded$' "$tmp/out" && ! grep -q -e 'panic:' -e 'Failing input' -e 'seed corpus' "$tmp/out"; then
		flaked=$((flaked + 1))
		printf 'fuzz: ok   %-28s ./%s  %s execs; Go ended it with "context deadline exceeded" (golang/go#75804)\n' "$name" "$dir" "${execs:-0}"
	else
		failed=$((failed + 1))
		grep -v '^fuzz: elapsed' "$tmp/out" | tail -40
		echo "fuzz: FAIL $name ./$dir (exit $rc, no new corpus file: a seed or the target itself fails)"
	fi
done <<<"$targets"

echo "fuzz: $ran targets run for $fuzztime each in $(($(date +%s) - start))s: $failed with a failing input, $broken not built, $flaked ended by Go's fuzztime race"
[ $failed -eq 0 ] && [ $broken -eq 0 ]
