package job

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/hadoop/conf"
)

// Prepare refuses a submission that is not one (both forms, neither, a
// command line without an absolute cwd) as a usage error naming what is
// wrong, refuses what Env's Check refuses, and plans the rest.
func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	data := "a\t1\nb\t2\n"
	if err := os.WriteFile(filepath.Join(in, "part-0"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(input string) []string {
		return []string{"-input", input, "-output", "out", "-mapper", "cat", "-reducer", "NONE"}
	}
	spec := Spec{Conf: conf.Conf{conf.InputDir: in, conf.OutputDir: filepath.Join(dir, "out"), conf.MapCommand: "cat"}}
	for _, c := range []struct {
		name string
		s    Submission
		want string
	}{
		{"both", Submission{Spec: &spec, Args: args(in), Cwd: dir}, "give a spec or a Streaming command line, not both"},
		{"neither", Submission{Cwd: dir}, "empty submission: give -input, -output and -mapper"},
		{"relative cwd", Submission{Args: args(in), Cwd: "rel"}, `cwd "rel": give the absolute directory`},
		{"no cwd", Submission{Args: args(in)}, `cwd "": give the absolute directory`},
	} {
		if _, err := Prepare(c.s, Env{}); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a usage error saying %q", c.name, err, c.want)
		}
	}

	var checked conf.Conf
	refuse := Env{Check: func(c conf.Conf) error {
		checked = c
		return errors.New("property x: not liked")
	}}
	_, err := Prepare(Submission{Args: args(in), Cwd: dir}, refuse)
	var refused *RefusedError
	if !errors.As(err, &refused) || len(refused.Problems) != 1 || refused.Problems[0] != "property x: not liked" {
		t.Errorf("a conf Check refuses: %v, want a refusal with its problem", err)
	}
	if checked.Get(conf.InputDir) != in {
		t.Errorf("Check saw input %q, want the parsed command line's %q", checked.Get(conf.InputDir), in)
	}

	plan, err := Prepare(Submission{Args: args(in), Cwd: dir}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	var planned int64
	for _, s := range plan.Splits {
		planned += s.Length
	}
	if planned != int64(len(data)) || plan.NumReduces != 0 || plan.Spec.Output() != filepath.Join(dir, "out") {
		t.Errorf("plan: %d of %d input bytes in splits, %d reduces, output %q", planned, len(data), plan.NumReduces, plan.Spec.Output())
	}
	nilConf := Spec{}
	if _, err := Prepare(Submission{Spec: &nilConf}, Env{}); !errors.As(err, &refused) || !strings.Contains(err.Error(), "-input") {
		t.Errorf("a spec without conf: %v, want a refusal naming the missing -input", err)
	}
}
