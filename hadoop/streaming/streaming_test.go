package streaming

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agora-cluster/agora/hadoop/conf"
)

func TestSplitArgsLikePipeMapRed(t *testing.T) {
	for in, want := range map[string][]string{
		"python3 mapper.py":       {"python3", "mapper.py"},
		"  awk  '{print $1}'  ":   {"awk", "{print $1}"},
		`sh -c "tr a-z A-Z"`:      {"sh", "-c", "tr a-z A-Z"},
		"cat":                     {"cat"},
		`perl -e 'print "a b"' x`: {"perl", "-e", `print "a b"`, "x"},
	} {
		got, err := SplitArgs(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := SplitArgs("sh -c 'oops"); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func TestSplitKeyValue(t *testing.T) {
	for _, c := range []struct {
		line, sep string
		fields    int
		k, v      string
	}{
		{"a\tb\tc", "\t", 1, "a", "b\tc"},
		{"a\tb\tc", "\t", 2, "a\tb", "c"},
		{"a\tb", "\t", 3, "a\tb", ""},
		{"nosep", "\t", 1, "nosep", ""},
		{"x::y::z", "::", 1, "x", "y::z"},
		{"\tv", "\t", 1, "", "v"},
	} {
		k, v := SplitKeyValue([]byte(c.line), []byte(c.sep), c.fields)
		if string(k) != c.k || string(v) != c.v {
			t.Errorf("%q sep %q fields %d: %q|%q, want %q|%q", c.line, c.sep, c.fields, k, v, c.k, c.v)
		}
	}
}

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

type collected struct {
	mu       sync.Mutex
	recs     []string
	counters map[string]int64
	status   string
	stderr   strings.Builder
}

func (c *collected) config(argv []string, env []string) Config {
	c.counters = map[string]int64{}
	return Config{
		Argv: argv, Env: env, InputSep: []byte("\t"), OutputSep: []byte("\t"), KeyFields: 1,
		ReporterPrefix: "reporter:", Stderr: &c.stderr, NonZeroExitFails: true,
		OnCounter: func(g, n string, v int64) { c.mu.Lock(); c.counters[g+"/"+n] += v; c.mu.Unlock() },
		OnStatus:  func(s string) { c.mu.Lock(); c.status = s; c.mu.Unlock() },
	}
}

func (c *collected) emit(k, v []byte) error {
	c.recs = append(c.recs, string(k)+"|"+string(v))
	return nil
}

func TestProcessProtocol(t *testing.T) {
	s := script(t, `
while IFS= read -r line; do
  printf '%s\tseen\n' "$line"
  echo "reporter:counter:Words,Lines,1" >&2
done
echo "reporter:status:all done" >&2
echo "reporter:counter:bad line" >&2
echo "plain stderr for the log" >&2
echo "job=$mapreduce_job_id old=$mapred_job_id cmd=$MY_VAR"
`)
	c := &collected{}
	env := Environ(os.Environ(), conf.Conf{"mapred.job.id": "job_1_0001"}, []string{"MY_VAR=x"}, t.TempDir())
	p, err := Start(context.Background(), c.config([]string{s}, env), c.emit)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := p.Write([]byte(fmt.Sprint(i)), []byte(fmt.Sprintf("line %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"0|line 0\tseen", "1|line 1\tseen", "2|line 2\tseen", "job=job_1_0001 old=job_1_0001 cmd=x|"}
	if !slices.Equal(c.recs, want) {
		t.Fatalf("records %q, want %q", c.recs, want)
	}
	if c.counters["Words/Lines"] != 3 || c.status != "all done" {
		t.Fatalf("counters %v status %q", c.counters, c.status)
	}
	if log := c.stderr.String(); !strings.Contains(log, "plain stderr for the log") || !strings.Contains(log, "reporter:counter:bad line") || strings.Contains(log, "Words,Lines") {
		t.Fatalf("stderr log %q", log)
	}
	if in, out := p.Records(); in != 3 || out != 4 {
		t.Fatalf("records in/out %d/%d", in, out)
	}
}

func TestProcessFailures(t *testing.T) {
	s := script(t, `
while IFS= read -r line; do
  case "$line" in *POISON*) echo "cannot parse: $line" >&2; exit 3;; esac
  echo "$line"
done
`)
	c := &collected{}
	cfg := c.config([]string{s}, nil)
	cfg.IgnoreKey = true
	p, err := Start(context.Background(), cfg, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"ok", "POISON pill", "never read"} {
		if p.Write(nil, []byte(l)) != nil {
			break
		}
	}
	err = p.Close()
	var pe *Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "subprocess failed with code 3") || !strings.Contains(pe.Tail, "cannot parse: POISON pill") {
		t.Fatalf("got %v", err)
	}

	// Exiting early without reading everything is a broken pipe.
	c = &collected{}
	p, err = Start(context.Background(), c.config([]string{"head", "-n", "1"}, nil), c.emit)
	if err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("x", 4096))
	for i := 0; i < 10000; i++ {
		if p.Write(nil, big) != nil {
			break
		}
	}
	if err := p.Close(); err == nil || !strings.Contains(err.Error(), "Broken pipe") {
		t.Fatalf("head: %v", err)
	}

	// An emit error stops the process and is returned as is.
	boom := errors.New("disk full")
	p, err = Start(context.Background(), Config{Argv: []string{"yes"}, OutputSep: []byte("\t")}, func(k, v []byte) error { return boom })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); !errors.Is(err, boom) {
		t.Fatalf("emit error: %v", err)
	}

	if _, err := Start(context.Background(), Config{Argv: []string{"no-such-program-xyz"}}, nil); err == nil {
		t.Fatal("started a missing program")
	}
}
