package job

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/fs"
)

func TestIDsRoundTrip(t *testing.T) {
	a := AttemptID{Task: TaskID{Job: ID{Tracker: "200709221812", Seq: 1}, Kind: Map, Index: 3}, N: 2}
	if a.String() != "attempt_200709221812_0001_m_000003_2" {
		t.Fatal(a.String())
	}
	if a.Task.String() != "task_200709221812_0001_m_000003" || a.Task.Job.String() != "job_200709221812_0001" {
		t.Fatal(a.Task.String(), a.Task.Job.String())
	}
	b, _ := json.Marshal(a)
	var back AttemptID
	if err := json.Unmarshal(b, &back); err != nil || back != a {
		t.Fatalf("%s → %v %v", b, back, err)
	}
	for _, bad := range []string{"attempt_x_0001_q_000001_0", "job_1", "task_1_2_m_x"} {
		if _, err := ParseAttemptID(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestParseStreamingSetsHadoopProperties(t *testing.T) {
	s, err := ParseStreaming([]string{
		"-D", "mapred.reduce.tasks=3", "-Dmapreduce.job.name=wc",
		"-files", "mapper.py,/abs/reducer.py",
		"-input", "in1,in2", "-input", "/data/in3",
		"-output", "out",
		"-mapper", "python3 mapper.py", "-reducer", "reducer.py", "-combiner", "reducer.py",
		"-cmdenv", "LANG=C", "-jobconf", "stream.num.map.output.key.fields=2",
	}, "/home/u")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.NumReduces(); n != 3 {
		t.Errorf("reduces %d", n)
	}
	if got := s.Inputs(); !slices.Equal(got, []string{"/home/u/in1", "/home/u/in2", "/data/in3"}) {
		t.Errorf("inputs %v", got)
	}
	if s.Output() != "/home/u/out" || s.Name() != "wc" || s.Mapper() != "python3 mapper.py" || s.Combiner() != "reducer.py" {
		t.Errorf("spec %+v", s)
	}
	if !slices.Equal(s.Files, []string{"/home/u/mapper.py", "/abs/reducer.py"}) {
		t.Errorf("files %v", s.Files)
	}
	if !slices.Equal(s.CmdEnv(), []string{"LANG=C"}) || s.Conf.Get(conf.MapOutputKeyFields) != "2" {
		t.Errorf("cmdenv %v, key fields %q", s.CmdEnv(), s.Conf.Get(conf.MapOutputKeyFields))
	}
	// The old name reads back through the new one.
	if s.Conf.Get("mapreduce.job.reduces") != "3" {
		t.Error("deprecated key not canonicalized")
	}

	s, err = ParseStreaming([]string{"-input", "i", "-output", "o", "-mapper", "cat", "-reducer", "NONE"}, "/")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.NumReduces(); n != 0 {
		t.Errorf("-reducer NONE gives %d reduces", n)
	}
}

func TestParseStreamingRefusesUnknownOptions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-input", "x", "-frobnicate", "y"}, "unknown option -frobnicate"},
		{[]string{"-input", "x", "-frobnicate"}, "unknown option -frobnicate"},
		{[]string{"-input"}, "option -input needs a value"},
		{[]string{"-D", "novalue"}, "want key=value"},
		{[]string{"-archives", "a.tgz"}, "archives are not supported"},
		{[]string{"stray"}, "unexpected argument"},
	} {
		_, err := ParseStreaming(c.args, "/")
		if err == nil || !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
	if _, err := ParseStreaming([]string{"-help"}, "/"); !errors.Is(err, ErrHelp) {
		t.Errorf("-help: %v", err)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRefusesBadSubmissionsWithEveryReason(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "in", "a.txt"), "hello\n", 0o644)
	writeFile(t, filepath.Join(dir, "noexec.sh"), "#!/bin/sh\ncat\n", 0o644)
	writeFile(t, filepath.Join(dir, "ok.sh"), "#!/bin/sh\ncat\n", 0o755)
	os.MkdirAll(filepath.Join(dir, "exists"), 0o755)
	resolve := fs.ResolverFor(0)
	refused := func(args []string, want ...string) {
		t.Helper()
		s, err := ParseStreaming(args, dir)
		if err != nil {
			t.Fatal(err)
		}
		err = Validate(s, resolve, nil)
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("%v: not refused: %v", args, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", args, err, w)
			}
		}
	}
	refused([]string{"-input", "missing", "-output", "out", "-mapper", "cat"},
		"input path does not exist: "+filepath.Join(dir, "missing"))
	refused([]string{"-input", "in", "-output", "exists", "-mapper", "cat"},
		"output directory "+filepath.Join(dir, "exists")+" already exists")
	refused([]string{"-input", "in", "-output", "out", "-mapper", filepath.Join(dir, "noexec.sh")},
		"noexec.sh: is not executable (mode -rw-r--r--)")
	refused([]string{"-input", "in", "-output", "out", "-mapper", "no-such-program-xyz"},
		`mapper "no-such-program-xyz": not found on PATH`)
	refused([]string{"-input", "in", "-output", "out", "-mapper", "cat", "-reducer", "org.example.WordCountReducer"},
		"Java classes cannot run here")
	refused([]string{"-output", "out"}, "required option -input is missing", "required option -mapper is missing")
	refused([]string{"-input", "in", "-output", "out", "-mapper", "cat", "-file", "gone.py", "-D", "mapreduce.map.maxattempts=zero"},
		"gone.py does not exist", `mapreduce.map.maxattempts="zero": not an integer`)
	refused([]string{"-input", "in", "-output", "out", "-mapper", "cat", "-partitioner", "org.apache.hadoop.mapred.lib.KeyFieldBasedPartitioner"},
		"partitioner org.apache.hadoop.mapred.lib.KeyFieldBasedPartitioner is not supported")

	// A good one passes, including a non-executable file shipped with -file
	// (Streaming makes shipped files executable) and a program on PATH.
	for _, args := range [][]string{
		{"-input", "in", "-output", "out", "-mapper", "noexec.sh", "-file", "noexec.sh", "-reducer", "sort"},
		{"-input", "in/*.txt", "-output", "out", "-mapper", filepath.Join(dir, "ok.sh"), "-reducer", "NONE"},
	} {
		s, err := ParseStreaming(args, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(s, resolve, nil); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestPlanSamplesTotalOrderPoints(t *testing.T) {
	m := fs.NewMem()
	var b strings.Builder
	for i := 999; i >= 0; i-- {
		b.WriteString(strings.Repeat("k", 1) + string(rune('a'+i%26)) + "\tv\n")
	}
	fs.WriteFile(m, "/in/x", []byte(b.String()))
	s := Spec{Conf: conf.Conf{conf.InputDir: "/in", conf.NumReduces: "4", conf.PartitionerName: "TotalOrderPartitioner"}}
	p, err := NewPlan(s, func(p string) (fs.FileSystem, string, error) { return m, p, nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.SplitPoints) != 3 {
		t.Fatalf("points %q", p.Spec.SplitPoints)
	}
	for i := 1; i < 3; i++ {
		if string(p.Spec.SplitPoints[i-1]) >= string(p.Spec.SplitPoints[i]) {
			t.Fatalf("points not increasing: %q", p.Spec.SplitPoints)
		}
	}
}
