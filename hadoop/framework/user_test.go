package framework_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/framework"
	"github.com/agora-cluster/agora/hadoop/job"
)

// startAlone runs the framework with no master answering (the API does
// without one) on state directory dir, its handler wrapped by wrap if
// set; stop ends it.
func startAlone(t *testing.T, dir string, wrap func(http.Handler) http.Handler) (fw *framework.Framework, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fw, err = framework.New(framework.Config{Masters: []string{"127.0.0.1:1"}, Listener: ln, StateDir: dir,
		ExecutorBinary: agoraBin, WrapHTTP: wrap, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the framework did not stop within a minute of its context ending")
		}
	}
	t.Cleanup(stop)
	return fw, stop
}

// basicAuth sends every request with a principal's credentials.
type basicAuth struct{ principal, secret string }

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.principal, b.secret)
	return http.DefaultTransport.RoundTrip(r)
}

// TestJobUser: a job is its submitter's, as Hadoop's user.name: the user
// the submission names, else its -D user.name, and behind credentials the
// authenticated principal whatever the submission claims. The user shows
// in the job list, also after a scheduler restart; a user that is no name
// is refused and no job is made.
func TestJobUser(t *testing.T) {
	dir := t.TempDir()
	writeCorpus(t, filepath.Join(dir, "in", "a.txt"), 4<<10, 1)
	ctx := context.Background()

	state := t.TempDir()
	fw, stop := startAlone(t, state, nil)
	cl := client.New(fw.URL())
	for _, tc := range []struct {
		name, user string
		extra      []string
		want       string
	}{
		{"the request's user", "alice", nil, "alice"},
		{"-D user.name", "", []string{"-D", "user.name=bob"}, "bob"},
		{"the request's user over -D user.name", "carol", []string{"-D", "user.name=bob"}, "carol"},
		{"none", "", nil, ""},
	} {
		args := append(tc.extra, wordcount(examples(t), "in", "out-"+tc.want)...)
		info, err := cl.Submit(ctx, client.SubmitRequest{Args: args, Cwd: dir, User: tc.user})
		if err != nil {
			t.Fatalf("%s: submit: %v", tc.name, err)
		}
		if info.User != tc.want {
			t.Errorf("%s: the job's user is %q, want %q", tc.name, info.User, tc.want)
		}
	}
	// agora hadoop streaming sends --user, else the user running it.
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{{[]string{"--user", "dave"}, "dave"}, {nil, me.Username}} {
		args := append([]string{"hadoop", "streaming", "--hadoop", fw.URL(), "--detach"}, tc.flags...)
		cmd := exec.Command(agoraBin, append(args, wordcount(examples(t), "in", "out-cli-"+tc.want)...)...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("agora %v: %v", args, err)
		}
		d, err := cl.Job(ctx, strings.TrimSpace(string(out)), false)
		if err != nil {
			t.Fatal(err)
		}
		if d.User != tc.want {
			t.Errorf("agora %v: the job's user is %q, want %q", args, d.User, tc.want)
		}
	}

	// The users are kept with the jobs: a restarted scheduler has them.
	stop()
	fw, _ = startAlone(t, state, nil)
	cl = client.New(fw.URL())
	jobs, err := cl.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]bool{}
	for _, j := range jobs {
		users[j.User] = true
	}
	for _, u := range []string{"alice", "bob", "carol", "", "dave", me.Username} {
		if !users[u] {
			t.Errorf("no job of user %q listed: %+v", u, jobs)
		}
	}
	_, err = cl.Submit(ctx, client.SubmitRequest{Args: wordcount(examples(t), "in", "out-bad"), Cwd: dir, User: "mallory\nroot"})
	if !errors.Is(err, job.ErrRefused) || !strings.Contains(err.Error(), `user "mallory\nroot"`) {
		t.Errorf("a user with a newline: %v, want the job refused, naming the user", err)
	}
	if after, err := cl.Jobs(ctx); err != nil || len(after) != len(jobs) {
		t.Errorf("after the refused submission %d jobs (%v), want %d", len(after), err, len(jobs))
	}

	creds, err := auth.ParseUserPassword("ops:pw")
	if err != nil {
		t.Fatal(err)
	}
	guard, err := auth.NewServiceGuard(auth.ServiceOptions{Credentials: creds, Realm: "hadoop"})
	if err != nil {
		t.Fatal(err)
	}
	guardedFW, _ := startAlone(t, t.TempDir(), guard.Wrap)
	guarded := client.New(guardedFW.URL())
	guarded.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: basicAuth{"ops", "pw"}}
	info, err := guarded.Submit(ctx, client.SubmitRequest{Args: append([]string{"-D", "user.name=bob"}, wordcount(examples(t), "in", "out-ops")...),
		Cwd: dir, User: "alice"})
	if err != nil {
		t.Fatalf("submit behind credentials: %v", err)
	}
	d, err := guarded.Job(ctx, info.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if info.User != "ops" || d.User != "ops" {
		t.Errorf("behind credentials the job's user is %q (listed %q), want the principal %q", info.User, d.User, "ops")
	}
}
