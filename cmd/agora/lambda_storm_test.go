package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	pageviews "github.com/agora-cluster/agora/examples/lambda-pageviews"
	"github.com/agora-cluster/agora/frameworks/state"
	"github.com/agora-cluster/agora/lambda/framework"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/stormspeed"
)

// The speed layer as a Storm topology on the native runtime (`agora
// lambda storm-speed`: a Kafka spout and a counting bolt, processes of
// the agora binary speaking multilang): every query answers exactly the
// counts computed offline before the first batch run, after it, across
// the boundary, after kill -9 of the bolt (its successor has the spout
// read again from the batch watermark) and after kill -9 of the spout.
func TestLambdaSpeedOnNativeStorm(t *testing.T) {
	spec, err := plan.Parse(pageviews.Spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	specPath := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(specPath, pageviews.Spec, 0o644); err != nil {
		t.Fatal(err)
	}
	fake, err := pipeline.StartBroker(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	brokers := fake.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := ingest.EnsureTopics(ctx, brokers, spec); err != nil {
		t.Fatal(err)
	}
	ictx, stopIngest := context.WithCancel(ctx)
	ingested := make(chan error, 1)
	go func() {
		ingested <- pipeline.RunIngest(ictx, spec, brokers, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { stopIngest(); <-ingested }()

	top := start(t, "lambda", "storm-speed", specPath, "--brokers", strings.Join(brokers, ","), "--work_dir", dir)
	api := func() string { b, _ := os.ReadFile(stormspeed.AddrFile(dir)); return string(b) }
	var st pipeline.Status
	status := func() pipeline.Status {
		st = pipeline.Status{}
		lambdaCall(http.MethodGet, api(), "/v1/status", &st)
		return st
	}
	feed := newLambdaFeed(t, spec, strings.Join(brokers, ","), 11)
	send := feed.send
	caughtUp := func(what string) {
		t.Helper()
		waitShowing(t, 2*time.Minute, func() string {
			return fmt.Sprintf("%s: not caught up with %d events: %+v\ntopology:\n%s", what, feed.sent, st, lastBytes(top.out.String(), 5000))
		}, func() bool { return feed.caughtUp(status()) })
	}
	check := func(stage string) { t.Helper(); feed.check(api(), stage) }

	send(3000)
	caughtUp("speed layer only")
	check("storm speed layer only")

	b, err := pipeline.RunBatchJob(ctx, spec, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Watermark[0]+b.Watermark[1] < 1024 {
		t.Fatalf("the batch run covered too little: %v", b.Watermark)
	}
	waitShowing(t, time.Minute, func() string { return fmt.Sprintf("the bolt did not swap in the batch view %v: %+v", b.Watermark, st) }, func() bool {
		return fmt.Sprint(status().BatchWatermark) == fmt.Sprint(b.Watermark)
	})
	check("storm: batch and speed")
	send(1500)
	caughtUp("across the boundary")
	check("storm: across the boundary")

	// The bolt killed: the runtime starts another, which has the spout
	// read the topic again from the batch watermark.
	before := api()
	killLayer(t, "storm-bolt")
	waitShowing(t, time.Minute, func() string { return "no new bolt serving after the kill" }, func() bool { return api() != before && api() != "" })
	send(500)
	caughtUp("after the bolt's kill -9")
	check("storm: after the bolt's kill -9")

	// The spout killed: the runtime starts another, reading from the
	// batch watermark; the bolt applies each offset once.
	killLayer(t, "storm-spout")
	send(700)
	caughtUp("after the spout's kill -9")
	check("storm: after the spout's kill -9")
}

// `agora lambda up --master` of a spec with layers.speed: storm runs the
// speed task as the topology (`agora lambda storm-speed`): answers exact
// before and after a batch run and after kill -9 of the counting bolt,
// and `agora lambda down` leaves none of its processes. Without --master
// such a spec is refused, saying why.
func TestLambdaUpStormSpeedAsTask(t *testing.T) {
	stormSpeedTask(t, nil, func() { killLayer(t, "storm-bolt") }, "the bolt's kill -9")
}

// The same with --storm_framework: the speed task submits the topology to
// agora's Storm framework, whose worker task (`agora storm worker`, the
// native runtime with the spout and the bolt) is killed -9 and launched
// again by that framework; the answers stay exact.
func TestLambdaUpStormSpeedOnStormFramework(t *testing.T) {
	stormSpeedTask(t, []string{"--storm_framework"}, func() { killStormWorker(t) }, "the Storm worker task's kill -9")
}

// killStormWorker sends SIGKILL to the running `agora storm worker`
// process of this test's binary, waiting up to a minute for it.
func killStormWorker(t *testing.T) {
	t.Helper()
	prefix := agoraBin + "\x00storm\x00worker"
	var pid int
	waitShowing(t, time.Minute, func() string { return "no running agora storm worker" }, func() bool {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "cmdline"))
			if err == nil && strings.HasPrefix(string(b), prefix) {
				pid, _ = strconv.Atoi(filepath.Base(d))
				return true
			}
		}
		return false
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 of agora storm worker (pid %d): %v", pid, err)
	}
	t.Logf("killed agora storm worker, pid %d", pid)
}

func stormSpeedTask(t *testing.T, upArgs []string, kill func(), killed string) {
	stormSpeedTaskOn(t, func() speedCluster {
		c := clustertest.Start(t, clustertest.Options{})
		return speedCluster{master: c.MasterAddr, agentDir: c.Agents[0].Config.WorkDir, upArgs: upArgs}
	}, kill, killed)
}

// The same with --storm_framework on a master that asks every caller for
// credentials (frameworks and HTTP) and speaks TLS: `up` given
// --principal, --secret_file and --ca_file subscribes its framework with
// them, and the speed task's topology, a framework of its own, gets them
// through the work directory (.secure/ 0700, the files 0600, the secret
// on no task's command line or environment, removed at `down`) and
// answers exact before and after a batch run. Its control port, open on
// the network, serves no page and refuses every change.
func TestLambdaUpStormSpeedOnASecureMaster(t *testing.T) {
	stormSpeedTaskOn(t, func() speedCluster {
		c := startSecureNativeCluster(t)
		cfg, err := tlsconf.ClientConfig(c.masterCA.CA)
		if err != nil {
			t.Fatal(err)
		}
		return speedCluster{master: c.master, agentDir: filepath.Join(c.dir, "agent"), secret: c.secretText,
			mc:     stateClient(auth.Credential{Principal: "ops", Secret: c.secretText}, cfg, auth.LeaderRedirect),
			upArgs: []string{"--storm_framework", "--principal", "ops", "--secret_file", c.secret, "--ca_file", c.masterCA.CA}}
	}, nil, "")
}

// speedCluster is the cluster stormSpeedTaskOn runs the pipeline on: its
// master (read with mc), its agent's work directory, the flags `up`
// takes for it, and the secret `up` is given ("": none).
type speedCluster struct {
	master, agentDir string
	upArgs           []string
	mc               state.Client
	secret           string
}

// stormSpeedTaskOn is stormSpeedTask on the cluster that cluster starts.
// Without kill nothing is killed between the batch run and `down`.
func stormSpeedTaskOn(t *testing.T, cluster func() speedCluster, kill func(), killed string) {
	dir := t.TempDir()
	specPath := filepath.Join(dir, "pipeline.yaml")
	stormSpec := strings.Replace(string(pageviews.Spec), "speed: native", "speed: storm", 1)
	if err := os.WriteFile(specPath, []byte(stormSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := plan.Parse([]byte(stormSpec))
	if err != nil || spec.Layers.Speed != "storm" {
		t.Fatalf("the storm spec: %v, %+v", err, spec)
	}
	if code, _, stderr := runLambdaCmd(t, "up", specPath, "--work_dir", t.TempDir(), "--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0"); code != 2 || !strings.Contains(stderr, "layers.speed is storm: the topology runs as the speed task of --master") {
		t.Fatalf("up of a storm spec without --master: exit %d, %q", code, stderr)
	}

	sc := cluster()
	master, agentDir, upArgs := sc.master, sc.agentDir, sc.upArgs
	up := start(t, append([]string{"lambda", "up", specPath, "--master", master, "--work_dir", filepath.Join(dir, "work"),
		"--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0", "--batch_period", "1h"}, upArgs...)...)
	brokers, api := upAddrs(t, up)
	var st framework.Status
	status := func() framework.Status {
		st = framework.Status{}
		lambdaCall(http.MethodGet, api, "/v1/status", &st)
		return st
	}
	feed := newLambdaFeed(t, spec, brokers, 13)
	send := feed.send
	caughtUp := func(what string) {
		t.Helper()
		waitShowing(t, 2*time.Minute, func() string {
			return fmt.Sprintf("%s: not caught up with %d events: %+v\nup: %s\nsandboxes:\n%s", what, feed.sent, st, lastBytes(up.out.String(), 3000), sandboxStderrs(agentDir, 3000))
		}, func() bool { return feed.caughtUp(status().Status) })
	}
	check := func(stage string) { t.Helper(); feed.check(api, stage) }

	send(2500)
	caughtUp("speed topology only")
	check("storm task: speed layer only")
	if code, out, stderr := runLambdaCmd(t, "batch", "--api", api); code != 0 || !strings.Contains(out, "batch view recomputed") {
		t.Fatalf("lambda batch: exit %d, %s %s", code, out, stderr)
	}
	check("storm task: batch and speed")
	if slices.Contains(upArgs, "--storm_framework") {
		managedControlRefuses(t, sc.mc, master, stormspeed.TopologyName(spec))
		check("storm task: after the refused changes")
	}
	if kill != nil {
		kill()
		send(600)
		caughtUp("after " + killed)
		check("storm task: after " + killed)
	}

	secretFile := filepath.Join(dir, "work", lambdaSecureDir, lambdaSecretFile)
	if sc.secret != "" {
		secretAtUp(t, sc, secretFile)
	}
	if code, out, stderr := runLambdaCmd(t, "down", "--api", api); code != 0 || !strings.Contains(out, "pipeline pageviews is down") {
		t.Fatalf("lambda down: exit %d, %s %s", code, out, stderr)
	}
	if sc.secret != "" {
		if _, err := os.Lstat(secretFile); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the speed task's secret file after lambda down: %v, want it removed", err)
		}
	}
	waitShowing(t, time.Minute, func() string { return "lambda processes still running after lambda down: " + layerProcs() }, func() bool { return layerProcs() == "" })
	waitShowing(t, time.Minute, func() string { return "a Storm worker still runs after lambda down" }, func() bool {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, "cmdline")); err == nil && strings.HasPrefix(string(b), agoraBin+"\x00storm\x00worker") {
				return false
			}
		}
		return true
	})
}

// secretAtUp checks, while the pipeline runs, how `up` gave the speed
// task its secret: a file of this user's only in a directory of this
// user's only, and on no command line or environment the master shows.
func secretAtUp(t *testing.T, sc speedCluster, secretFile string) {
	t.Helper()
	fi, err := os.Stat(secretFile)
	if err != nil {
		t.Fatalf("the speed task's secret file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the speed task's secret file has mode %v, want 0600", fi.Mode().Perm())
	}
	if b, err := os.ReadFile(secretFile); err != nil || strings.TrimSpace(string(b)) != sc.secret {
		t.Errorf("the speed task's secret file holds %q (%v), want the secret given to up", b, err)
	}
	di, err := os.Stat(filepath.Dir(secretFile))
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("the secret's directory: %v, %v; want mode 0700", di, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var raw json.RawMessage
	if err := sc.mc.Get(ctx, sc.master, "/master/state", &raw); err != nil {
		t.Fatalf("the master's state: %v", err)
	}
	if strings.Contains(string(raw), sc.secret) {
		t.Errorf("the master's state shows the secret given to up")
	}
	// The speed task's process, this test's (other tests' speed tasks
	// may run beside it): its arguments name the secret's file, which is
	// under this test's work directory; neither they nor its environment
	// hold the secret.
	prefix := agoraBin + "\x00lambda\x00storm-speed\x00"
	var cmdline, environ []byte
	var others []string
	waitShowing(t, time.Minute, func() string {
		return fmt.Sprintf("no `agora lambda storm-speed` process with --secret_file %s; those running: %q", secretFile, others)
	}, func() bool {
		others = nil
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "cmdline"))
			if err != nil || !strings.HasPrefix(string(b), prefix) {
				continue
			}
			args := strings.Split(string(b), "\x00")
			if i := slices.Index(args, "--secret_file"); i < 0 || i+1 >= len(args) || args[i+1] != secretFile {
				others = append(others, strings.Join(args, " "))
				continue
			}
			env, err := os.ReadFile(filepath.Join(d, "environ"))
			if err != nil {
				continue // it has just ended: look again
			}
			cmdline, environ = b, env
			return true
		}
		return false
	})
	if strings.Contains(string(cmdline), sc.secret) || strings.Contains(string(environ), sc.secret) {
		t.Errorf("the speed task's arguments or environment hold the secret: %q", strings.Split(string(cmdline), "\x00"))
	}
}

// managedControlRefuses checks the control port of the speed task's
// topology: open to anyone over plain HTTP, it serves no topologies page
// or API (which would show the cluster's topologies with the pipeline's
// credentials) and refuses every change, whatever headers come with it;
// its /status stays, and the topology stays ACTIVE.
func managedControlRefuses(t *testing.T, mc state.Client, master, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base, err := nativeControlURL(ctx, mc, master, name)
	if err != nil {
		t.Fatalf("the speed topology's control: %v", err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Requested-By", "anyone")
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s%s: %v", method, base, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/api/v1/topologies", "/ui/", "/"} {
		if code, body := do(http.MethodGet, path, ""); code != http.StatusNotFound {
			t.Errorf("GET %s%s on the speed topology's control: %d %q, want 404 (no page)", base, path, code, lastBytes(body, 300))
		}
	}
	for _, c := range []struct{ path, body string }{
		{"/deactivate", ""}, {"/activate", ""}, {"/rebalance", `{"workers": 2}`}, {"/api/v1/topologies/" + name + "/kill", ""},
	} {
		if code, body := do(http.MethodPost, c.path, c.body); code != http.StatusForbidden || !strings.Contains(body, "managed by the pipeline") {
			t.Errorf("POST %s%s on the speed topology's control: %d %q, want 403 managed by the pipeline", base, c.path, code, body)
		}
	}
	code, body := do(http.MethodGet, "/status", "")
	var st nativeStatusReply
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil || st.Status != "ACTIVE" || st.Workers != 1 {
		t.Errorf("GET %s/status: %d %q, want 200 ACTIVE with 1 worker", base, code, body)
	}
}

// The speed task's secret directory in the work directory is this user's
// only: a symbolic link or a file there, or a directory of another user,
// is refused and left as it is (nothing written through it); a directory
// of this user's open to others is closed (0700), a link waiting where
// the secret's temporary file used to be is not followed, and a link
// swapped in for the directory once it is open is not followed either.
func TestLambdaUpStormSpeedSecretDirRefusals(t *testing.T) {
	o := upTasks{cred: auth.Credential{Principal: "ops", Secret: "speed-secret"}}
	elsewhere := t.TempDir()
	target := filepath.Join(elsewhere, "target")
	if err := os.WriteFile(target, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	untouched := func(what string) {
		t.Helper()
		if b, _ := os.ReadFile(target); string(b) != "untouched" {
			t.Errorf("%s: the file outside the work directory now holds %q", what, b)
		}
		if entries, _ := os.ReadDir(elsewhere); len(entries) != 1 {
			t.Errorf("%s: %d entries outside the work directory, want 1", what, len(entries))
		}
	}
	refused := func(what, want string, prepare func(sdir string)) {
		t.Helper()
		dir := t.TempDir()
		sdir := filepath.Join(dir, lambdaSecureDir)
		prepare(sdir)
		args, _, err := lambdaTaskSecurity(dir, o)
		if err == nil || !strings.Contains(err.Error(), want) || args != nil {
			t.Errorf("%s: args %q, err %v; want refused with %q", what, args, err, want)
		}
		untouched(what)
	}
	refused("a link to another directory", "is not a directory", func(sdir string) {
		if err := os.Symlink(elsewhere, sdir); err != nil {
			t.Fatal(err)
		}
	})
	refused("a file", "is not a directory", func(sdir string) {
		if err := os.WriteFile(sdir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if os.Getuid() == 0 {
		refused("another user's directory", "belongs to user 4242", func(sdir string) {
			if err := os.Mkdir(sdir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(sdir, 4242, 4242); err != nil {
				t.Fatal(err)
			}
		})
	} else {
		t.Log("another user's directory: not tried, chown needs root")
	}

	dir := t.TempDir()
	sdir := filepath.Join(dir, lambdaSecureDir)
	if err := os.Mkdir(sdir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sdir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(sdir, lambdaSecretFile+".tmp")); err != nil {
		t.Fatal(err)
	}
	args, files, err := lambdaTaskSecurity(dir, o)
	if err != nil {
		t.Fatalf("an open directory of this user's: %v", err)
	}
	untouched("a link at the old temporary name")
	if fi, err := os.Lstat(sdir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the secret's directory: %v, %v; want it closed to 0700", fi, err)
	}
	secret := filepath.Join(sdir, lambdaSecretFile)
	if fi, err := os.Lstat(secret); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("the secret file: %v, %v; want a regular file 0600", fi, err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "speed-secret\n" {
		t.Errorf("the secret file holds %q", b)
	}
	if !slices.Equal(files.paths(), []string{secret}) || !slices.Contains(args, secret) || slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "speed-secret") }) {
		t.Errorf("files %q, args %q: want the secret's file, its path in the arguments and the secret in none", files.paths(), args)
	}
	if err := files.remove(); err != nil {
		t.Errorf("removing the secret: %v", err)
	}
	if _, err := os.Lstat(secret); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the secret file after its removal: %v, want it gone", err)
	}

	// A link put in the directory's place once it is open sends nothing
	// elsewhere: the secret is written to, and removed from, the
	// directory opened.
	dir = t.TempDir()
	sdir = filepath.Join(dir, lambdaSecureDir)
	files, err = openPrivateDir(sdir)
	if err != nil {
		t.Fatal(err)
	}
	defer files.remove()
	moved := sdir + ".moved"
	if err := os.Rename(sdir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, sdir); err != nil {
		t.Fatal(err)
	}
	if _, err := files.write(lambdaSecretFile, []byte("speed-secret\n")); err != nil {
		t.Fatalf("writing through the opened directory: %v", err)
	}
	untouched("a link swapped in after the directory was opened")
	if b, err := os.ReadFile(filepath.Join(moved, lambdaSecretFile)); err != nil || string(b) != "speed-secret\n" {
		t.Errorf("the secret in the directory opened: %q, %v", b, err)
	}
	decoy := filepath.Join(elsewhere, lambdaSecretFile)
	if err := os.WriteFile(decoy, []byte("not the secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := files.remove(); err != nil {
		t.Errorf("removing the secret: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(moved, lambdaSecretFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the secret in the directory opened, after its removal: %v, want it gone", err)
	}
	if b, err := os.ReadFile(decoy); err != nil || string(b) != "not the secret" {
		t.Errorf("the file of that name behind the link after the removal: %q, %v; want it left alone", b, err)
	}
}

// `lambda up` without --master refuses the master's credentials and CA,
// which only its framework would use, rather than ignore them.
func TestLambdaUpStormSpeedFlagsNeedMaster(t *testing.T) {
	for _, flags := range [][]string{{"--principal", "ops"}, {"--secret_file", "/nonexistent"}, {"--ca_file", "/nonexistent"}} {
		work := t.TempDir()
		code, _, stderr := runLambdaCmd(t, append([]string{"up", pageviewsSpec, "--work_dir", work, "--broker_addr", "127.0.0.1:0", "--api", "127.0.0.1:0"}, flags...)...)
		if code != 2 || !strings.Contains(stderr, flags[0]) || !strings.Contains(stderr, "need --master") {
			t.Errorf("up %s without --master: exit %d, %q; want 2 naming it and --master", flags[0], code, stderr)
		}
		if entries, _ := os.ReadDir(work); len(entries) != 0 {
			t.Errorf("up %s without --master made %d entries in the work directory", flags[0], len(entries))
		}
	}
}
