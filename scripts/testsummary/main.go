// Command testsummary reads `go test -json` on stdin and prints what a
// plain `go test` prints — each package's ok/FAIL line, and the output of
// the tests that failed — plus the output of every skipped test, so the
// reason of each skip is seen, and a closing count:
//
//	N passed, N failed, N skipped
//
// followed by the list of skipped tests with their reasons. It exits 1
// when a test or a package failed (a build failure included).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

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
			delete(buffered, key)
		case e.Action == "fail":
			failed++
			fmt.Fprint(out, strings.Join(buffered[key], ""))
			out.Flush()
			delete(buffered, key)
		case e.Action == "skip":
			skipped++
			reason := skipReason(buffered[key])
			skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
			fmt.Fprint(out, strings.Join(buffered[key], ""))
			delete(buffered, key)
		}
	}
	fmt.Fprintf(out, "\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if len(skips) > 0 {
		sort.Strings(skips)
		fmt.Fprintln(out, "skipped:")
		for _, s := range skips {
			fmt.Fprintln(out, "  "+s)
		}
	}
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
		if t == "" || strings.HasPrefix(t, "===") || strings.HasPrefix(t, "---") {
			continue
		}
		r = append(r, t)
	}
	if len(r) == 0 {
		return "(no reason given)"
	}
	return strings.Join(r, " ")
}
