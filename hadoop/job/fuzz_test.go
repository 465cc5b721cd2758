package job_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
)

// FuzzSubmit: no body posted to the Hadoop framework's job API (POST
// /jobs: a spec or a Streaming command line) panics its decoding,
// validation or planning (job.Prepare, which the framework's Prepare
// calls); a refusal is a usage error or lists its problems, and an
// accepted submission's spec travels as JSON (as it does to the
// executors) and is accepted again. File systems are confined to a
// scratch directory: a URI other than file:// and a path outside it are
// refused, so the target never dials out nor walks the machine.
func FuzzSubmit(f *testing.F) {
	scratch := f.TempDir()
	for name, body := range map[string]string{"in/part-0": "b\t2\na\t1\nc\t3\n", "in/part-1": "d\n", "conf.xml": `<configuration><property><name>mapreduce.job.name</name><value>x</value></property></configuration>`} {
		p := filepath.Join(scratch, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	in, out := filepath.Join(scratch, "in"), filepath.Join(scratch, "out")
	for _, args := range [][]string{
		{"-input", in, "-output", out, "-mapper", "cat", "-reducer", "NONE"},
		{"-input", in, "-output", out, "-mapper", job.IdentityMapper, "-reducer", job.IdentityReducer, "-numReduceTasks", "3"},
		{"-input", in + "/part-*", "-output", out, "-mapper", "cat", "-D", "mapreduce.job.reduces=-1", "-partitioner", "org.apache.hadoop.mapred.lib.TotalOrderPartitioner"},
		{"-input", in, "-output", in, "-mapper", "cat"},
		{"-input", "hdfs:///x", "-output", "hdfs://host:8020/y", "-mapper", "cat"},
		{"-input", in, "-output", out, "-mapper", "cat", "-conf", "conf.xml", "-cmdenv", "A=B", "-file", "/nonexistent"},
		{"-input", in, "-output", out, "-mapper", "cat", "-conf", "/dev/zero"},
		{"-D", "mapreduce.task.io.sort.mb=99999999999999999999", "-input", in, "-output", out, "-mapper", "cat"},
		{"-help"}, {"-input"}, {"-unknown", "x"},
	} {
		b, _ := json.Marshal(client.SubmitRequest{Args: args, Cwd: scratch})
		f.Add(b)
	}
	spec := job.Spec{Conf: conf.Conf{conf.InputDir: in, conf.OutputDir: out, conf.MapCommand: "cat", conf.NumReduces: "2"}}
	b, _ := json.Marshal(client.SubmitRequest{Spec: &spec})
	f.Add(b)
	b, _ = json.Marshal(client.SubmitRequest{Spec: &spec, Args: []string{"-input", in}})
	f.Add(b)
	for _, s := range []string{`{}`, `{"spec":{}}`, `{"spec":{"conf":null,"split_points":["AA=="]}}`, `{"args":["-input"],"cwd":"relative"}`, `[`, `null`} {
		f.Add([]byte(s))
	}
	confined := func(c conf.Conf) (fs.Resolver, error) {
		resolve, err := job.Resolver(c)
		if err != nil {
			return nil, err
		}
		return func(p string) (fs.FileSystem, string, error) {
			if scheme, _, ok := strings.Cut(p, "://"); ok && scheme != "file" {
				return nil, "", fmt.Errorf("path %s: no file system but the scratch directory in this test", p)
			}
			fsys, name, err := resolve(p)
			if err != nil {
				return nil, "", err
			}
			if !filepath.IsAbs(name) || !strings.HasPrefix(filepath.Clean(name)+"/", scratch+"/") {
				return nil, "", fmt.Errorf("path %s: outside the scratch directory", p)
			}
			return fsys, name, nil
		}, nil
	}
	noPath := func(name string) (string, error) {
		if name == "cat" {
			return "/bin/cat", nil
		}
		return "", fmt.Errorf("%s: not on PATH", name)
	}
	// The framework's Prepare with these file systems and PATH; the
	// framework checks the job tracker's settings so.
	env := job.Env{Resolver: confined, LookPath: noPath, Check: func(c conf.Conf) error {
		_, err := jobtracker.ConfigFrom(c)
		return err
	}}
	f.Fuzz(func(t *testing.T, body []byte) {
		// The API decodes exactly so (handleSubmit).
		var req client.SubmitRequest
		if err := json.NewDecoder(io.LimitReader(bytes.NewReader(body), 64<<20)).Decode(&req); err != nil {
			return
		}
		// A -conf file is read where the framework runs: keep the target
		// to the scratch directory's.
		if i := slices.Index(req.Args, "-conf"); i >= 0 && i+1 < len(req.Args) && (filepath.IsAbs(req.Args[i+1]) || strings.Contains(req.Args[i+1], "..") || strings.Contains(req.Args[i+1], ":")) {
			return
		}
		if !filepath.IsAbs(req.Cwd) || filepath.Clean(req.Cwd) != scratch {
			req.Cwd = scratch
		}
		plan, err := job.Prepare(job.Submission{Spec: req.Spec, Args: req.Args, Cwd: req.Cwd}, env)
		if err != nil {
			var refused *job.RefusedError
			if !errors.Is(err, job.ErrUsage) && !errors.Is(err, job.ErrHelp) && !errors.As(err, &refused) {
				t.Fatalf("refused with an error of no kind: %v", err)
			}
			if errors.As(err, &refused) && len(refused.Problems) == 0 {
				t.Fatalf("refused without a problem")
			}
			return
		}
		if len(plan.Splits) == 0 {
			t.Fatal("accepted a plan without splits")
		}
		wire, err := json.Marshal(plan.Spec)
		if err != nil {
			t.Fatalf("an accepted spec does not encode: %v", err)
		}
		var again job.Spec
		if err := json.Unmarshal(wire, &again); err != nil {
			t.Fatalf("an accepted spec does not decode: %v", err)
		}
		if _, err := job.Prepare(job.Submission{Spec: &again}, env); err != nil {
			t.Fatalf("an accepted spec, sent as JSON, is refused: %v\n%s", err, wire)
		}
	})
}

// A -conf that never ends (a device, a fifo) is refused, not read
// forever: a submission is parsed where the framework runs.
func TestConfFileMustBeARegularFile(t *testing.T) {
	for _, p := range []string{"/dev/zero", t.TempDir()} {
		_, err := job.ParseStreaming([]string{"-conf", p, "-input", "/i", "-output", "/o", "-mapper", "cat"}, "/")
		if err == nil || !errors.Is(err, job.ErrUsage) || !strings.Contains(err.Error(), p) {
			t.Errorf("-conf %s: %v", p, err)
		}
	}
}
