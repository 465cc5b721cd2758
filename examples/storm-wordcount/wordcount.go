// Package wordcount holds the Storm word count example — a Flux topology
// of Python multilang components — so that programs (tests, `agora bench
// storm`) can write it out and know the counts it must produce.
package wordcount

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files are topology.yaml and resources/ (the scripts and sentences.txt).
//
//go:embed topology.yaml resources
var Files embed.FS

// WriteTo writes the example into dir and returns its topology.yaml's
// path; the scripts go to dir/resources.
func WriteTo(dir string) (string, error) {
	err := fs.WalkDir(Files, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if e.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := Files.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	return filepath.Join(dir, "topology.yaml"), err
}

// Sentences are the lines the spout emits.
func Sentences() []string {
	b, _ := Files.ReadFile("resources/sentences.txt")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Counts are the word counts of Sentences: what the count bolts must
// hold between them once every sentence has been processed once.
func Counts() map[string]int {
	n := map[string]int{}
	for _, s := range Sentences() {
		for _, w := range strings.Fields(s) {
			n[w]++
		}
	}
	return n
}
