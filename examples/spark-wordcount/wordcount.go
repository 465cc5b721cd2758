// Package wordcount holds the PySpark word count example, so that tests
// and `agora bench spark` can write it out and submit it, and counts words
// the way the script does, to check its output.
package wordcount

import (
	_ "embed"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Script is wordcount.py.
//
//go:embed wordcount.py
var Script []byte

// Input is input.txt, a small text to count.
//
//go:embed input.txt
var Input []byte

var word = regexp.MustCompile(`[a-z0-9']+`)

// Count counts text's words as wordcount.py does.
func Count(text string) map[string]int {
	m := map[string]int{}
	for _, line := range strings.Split(text, "\n") {
		for _, w := range word.FindAllString(strings.ToLower(line), -1) {
			m[w]++
		}
	}
	return m
}

// Output is what wordcount.py prints for counts: "word<TAB>count" lines
// sorted by word, then "total<TAB>N".
func Output(counts map[string]int) string {
	ws := make([]string, 0, len(counts))
	total := 0
	for w, n := range counts {
		ws = append(ws, w)
		total += n
	}
	sort.Strings(ws)
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "%s\t%d\n", w, counts[w])
	}
	fmt.Fprintf(&b, "total\t%d\n", total)
	return b.String()
}

// Parse reads wordcount.py's output back out of text that may hold other
// lines (a driver's log): the counts, and whether the total line was
// there and matched them.
func Parse(text string) (map[string]int, bool) {
	m := map[string]int{}
	total, sum, seen := 0, 0, false
	for _, line := range strings.Split(text, "\n") {
		w, n, ok := strings.Cut(strings.TrimRight(line, "\r"), "\t")
		var c int
		if !ok || !word.MatchString(w) || word.FindString(w) != w {
			continue
		}
		if _, err := fmt.Sscanf(n, "%d", &c); err != nil || fmt.Sprint(c) != n {
			continue
		}
		if w == "total" {
			total, seen = c, true
			continue
		}
		m[w] = c
		sum += c
	}
	return m, seen && total == sum
}
