// Command testsummary reads `go test -json` on stdin and prints what a
// plain `go test` prints — each package's ok/FAIL line, and the output of
// the tests that failed — plus the output of every skipped test, so the
// reason of each skip is seen, and a closing count:
//
//	N passed, N failed, N skipped
//
// followed by how many tests of each tier of real components ran and were
// skipped (the "tier NAME: ran|skipped" lines of package
// cluster/clustertest/tier) and the list of skipped tests with their
// reasons. It exits 1 when a test or a package failed (a build failure
// included).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// tierLine is what package tier logs: "tier NAME: ran" or "tier NAME:
// skipped: ...".
var tierLine = regexp.MustCompile(`\btier (\S+): (ran|skipped|failed)\b`)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	buffered := map[string][]string{} // package/test → its output so far
	var passed, failed, skipped int
	var skips []string
	type tally struct{ ran, skipped int }
	tiers := map[string]*tally{}
	countTiers := func(lines []string, skippedTest bool) {
		last := map[string]string{} // each tier's last word in this test
		for _, l := range lines {
			if m := tierLine.FindStringSubmatch(l); m != nil {
				last[m[1]] = m[2]
			}
		}
		for name, word := range last {
			if tiers[name] == nil {
				tiers[name] = &tally{}
			}
			switch {
			case skippedTest && word == "skipped":
				tiers[name].skipped++
			case !skippedTest && word == "ran":
				tiers[name].ran++
			}
		}
	}
	pkgFailed := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (a build error printed by go itself): pass it on.
			fmt.Fprintln(out, string(line))
			out.Flush()
			continue
		}
		key := e.Package + "/" + e.Test
		switch {
		case e.Test == "" && e.Action == "output":
			if e.Output == "PASS\n" {
				continue // go test prints only the ok line for a passing package
			}
			fmt.Fprint(out, e.Output)
			out.Flush()
		case e.Test == "" && e.Action == "fail":
			pkgFailed = true
		case e.Test == "":
			// A package's pass, or its skip for having no test files.
		case e.Action == "output":
			buffered[key] = append(buffered[key], e.Output)
		case e.Action == "pass":
			passed++
			countTiers(buffered[key], false)
			delete(buffered, key)
		case e.Action == "fail":
			failed++
			countTiers(buffered[key], false)
			fmt.Fprint(out, strings.Join(buffered[key], ""))
			out.Flush()
			delete(buffered, key)
		case e.Action == "skip":
			skipped++
			countTiers(buffered[key], true)
			reason := skipReason(buffered[key])
			skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
			fmt.Fprint(out, strings.Join(buffered[key], ""))
			delete(buffered, key)
		}
	}
	// Tests that never ended — their binary was killed (a -timeout panic,
	// a crash, a signal) — count as failed, with what they printed, so
	// that a hang is never a green line.
	if len(buffered) > 0 {
		keys := make([]string, 0, len(buffered))
		for k := range buffered {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			failed++
			fmt.Fprintf(out, "\n=== %s did not finish (its test binary was killed or timed out); its output:\n%s", k, strings.Join(buffered[k], ""))
		}
	}
	if len(tiers) > 0 {
		fmt.Fprintln(out, "\ntiers of real components (tests ran / skipped):")
		names := make([]string, 0, len(tiers))
		for n := range tiers {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(out, "  %-14s %d / %d\n", n, tiers[n].ran, tiers[n].skipped)
		}
	}
	if len(skips) > 0 {
		sort.Strings(skips)
		fmt.Fprintln(out, "\nskipped:")
		for _, s := range skips {
			fmt.Fprintln(out, "  "+s)
		}
	}
	fmt.Fprintf(out, "\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || pkgFailed {
		out.Flush()
		os.Exit(1)
	}
}

// skipReason is the message a skipped test logged: its output less the
// === and --- lines.
func skipReason(lines []string) string {
	var r []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "===") || strings.HasPrefix(t, "---") || strings.HasSuffix(t, ": ran") {
			continue
		}
		r = append(r, t)
	}
	if len(r) == 0 {
		return "(no reason given)"
	}
	return strings.Join(r, " ")
}
