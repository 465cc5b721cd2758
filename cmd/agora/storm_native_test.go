package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	wordcount "github.com/agora-cluster/agora/examples/storm-wordcount"
	"github.com/agora-cluster/agora/frameworks/state"
	"github.com/agora-cluster/agora/storm/bench"
	"github.com/agora-cluster/agora/storm/multilang"
	"github.com/agora-cluster/agora/storm/native"
	nativefw "github.com/agora-cluster/agora/storm/native/framework"
)

// TestStormNativeOnAgora runs the example word count with `agora storm
// submit --runtime native` on a real master and agent (processes, posix
// isolation so that the test's binary and output directory are visible to
// the task): exact counts, `info` (the worker's metrics), `list` and
// `kill`, a duplicate name and a bad topology refused with nothing
// launched, and two workers (`workers`
// lists them), one killed with SIGKILL mid-stream and launched again
// alone until every sentence is acked, then rebalanced to three workers.
func TestStormNativeOnAgora(t *testing.T) {
	dir, master, path := startNativeStormCluster(t)
	storm := func(args ...string) (string, string, int) {
		return runClient(t, master, append([]string{"storm"}, args...)...)
	}
	list := func() []map[string]string {
		out, errOut, code := storm("list", "--runtime", "native", "--master", master, "--json")
		var ts []map[string]string
		if code != 0 || json.Unmarshal([]byte(out), &ts) != nil {
			t.Fatalf("storm list --runtime native: exit %d %q %q", code, out, errOut)
		}
		return ts
	}
	submit := func(out string, extra ...string) *proc {
		args := append([]string{"storm", "submit", path, "--runtime", "native", "--master", master, "--mem", "256", "--cpus", "0.5",
			"-c", "wordcount.output.dir=" + out}, extra...)
		return start(t, args...)
	}

	// Exact counts, as Go counts the sentences. Submitted as against
	// `agora dev` with no Storm distribution installed: no --runtime, no
	// --master (AGORA_MASTER), so the native runtime is the default.
	out1 := filepath.Join(dir, "out1")
	os.Mkdir(out1, 0o777)
	cmd := exec.Command(agoraBin, "storm", "submit", path, "--mem", "256", "--cpus", "0.5",
		"-c", "wordcount.output.dir="+out1, "-c", "topology.message.timeout.secs=300")
	cmd.Env = append(os.Environ(), "AGORA_MASTER="+master, "AGORA_DIST_DIR="+filepath.Join(dir, "no-dist"), "AGORA_STORM_NIMBUS=")
	sub := startCmd(t, cmd, "agora storm submit (default runtime)")
	n := len(wordcount.Sentences())
	waitShowing(t, 2*time.Minute, func() string { return "acks: " + strconv.Itoa(ackedLines(out1)) + "; submit: " + sub.out.String() },
		func() bool { return ackedLines(out1) == n })
	got, err := bench.ReadCounts(out1)
	if err != nil || len(got) != len(wordcount.Counts()) {
		t.Fatalf("counts %v (%v), want %v", got, err, wordcount.Counts())
	}
	for w, c := range wordcount.Counts() {
		if got[w] != c {
			t.Errorf("count of %q = %d, want %d", w, got[w], c)
		}
	}
	// info: the worker's metrics, read from its sandbox through the agent.
	words := 0
	for _, c := range wordcount.Counts() {
		words += c
	}
	var info nativeInfo
	waitShowing(t, time.Minute, func() string { return fmt.Sprintf("storm info --runtime native: %+v", info) }, func() bool {
		out, _, code := storm("info", "wordcount", "--runtime", "native", "--master", master, "--json")
		info = nativeInfo{}
		if code != 0 || json.Unmarshal([]byte(out), &info) != nil || len(info.Workers) != 1 {
			return false
		}
		spout, count := componentOf(info, "sentences"), componentOf(info, "count")
		return spout.Type == "spout" && spout.Acked >= int64(n) && count.Executed >= int64(words) && count.Tasks == 2
	})
	if out, _, code := storm("info", "wordcount", "--runtime", "native", "--master", master); code != 0 || !strings.Contains(out, "LATENCY") || !strings.Contains(out, "sentences") {
		t.Errorf("storm info --runtime native: exit %d\n%s", code, out)
	}
	if !strings.Contains(sub.out.String(), "running the topology on agora's native runtime on the cluster of "+master) {
		t.Errorf("submit without --runtime did not say it runs natively: %s", sub.out.String())
	}
	if ts := list(); len(ts) != 1 || ts[0]["name"] != "wordcount" || ts[0]["state"] != "TASK_RUNNING" {
		t.Fatalf("storm list --runtime native = %v, want wordcount running", ts)
	}

	// Refused before anything runs: the same name again, a bad topology.
	if _, errOut, code := storm("submit", path, "--runtime", "native", "--master", master); code != 1 || !strings.Contains(errOut, `topology "wordcount" already runs`) {
		t.Errorf("second submission: exit %d, %q", code, errOut)
	}
	bad := strings.Replace(mustRead(t, path), "type: SHUFFLE", "type: ROUND_ROBIN", 1)
	badPath := filepath.Join(filepath.Dir(path), "bad.yaml")
	os.WriteFile(badPath, []byte(bad), 0o644)
	if _, errOut, code := storm("submit", badPath, "--runtime", "native", "--master", master, "--name", "bad"); code != 1 || !strings.Contains(errOut, `unknown grouping "ROUND_ROBIN"`) {
		t.Errorf("unknown grouping: exit %d, %q", code, errOut)
	}
	if ts := list(); len(ts) != 1 {
		t.Errorf("after the refusals: %v, want only wordcount", ts)
	}

	// kill: the framework goes, the submitting command ends well.
	if out, errOut, code := storm("kill", "wordcount", "--runtime", "native", "--master", master); code != 0 || !strings.Contains(out, "killing wordcount") {
		t.Fatalf("storm kill --runtime native: exit %d %q %q", code, out, errOut)
	}
	select {
	case <-sub.done:
		if code := sub.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(sub.out.String(), "killed") {
			t.Errorf("submit ended %d after the kill: %s", code, sub.out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("submit still runs a minute after the kill: %s", sub.out.String())
	}
	waitShowing(t, time.Minute, func() string { return "native topologies still listed" }, func() bool { return len(list()) == 0 })
	if _, errOut, code := storm("kill", "wordcount", "--runtime", "native", "--master", master); code != 1 || !strings.Contains(errOut, `no native topology "wordcount"`) {
		t.Errorf("killing it again: exit %d, %q", code, errOut)
	}

	// A bolt that breaks the protocol stops the topology: the command
	// fails and nothing is left running.
	res := filepath.Join(filepath.Dir(path), "resources")
	os.WriteFile(filepath.Join(res, "bad.py"), []byte("import json, os, sys\nsys.stdin.readline(); sys.stdin.readline()\n"+
		"print(json.dumps({'pid': os.getpid()})); print('end'); sys.stdout.flush()\n"+
		"print('not json'); print('end'); sys.stdout.flush(); sys.stdin.read()\n"), 0o644)
	brokenPath := filepath.Join(filepath.Dir(path), "broken.yaml")
	os.WriteFile(brokenPath, []byte(strings.Replace(mustRead(t, path), `["python3", "count.py"]`, `["python3", "bad.py"]`, 1)), 0o644)
	if _, errOut, code := storm("submit", brokenPath, "--runtime", "native", "--master", master, "--name", "broken"); code != 1 || !strings.Contains(errOut, "the topology stopped") {
		t.Errorf("a broken bolt: exit %d, %q", code, errOut)
	}
	waitShowing(t, time.Minute, func() string { return "the broken topology is still listed" }, func() bool { return len(list()) == 0 })

	// Two workers (tuples between them over TCP), then SIGKILL of one
	// mid-stream: both are launched again and every sentence is acked.
	out2 := filepath.Join(dir, "out2")
	os.Mkdir(out2, 0o777)
	const repeat = 10
	sub = submit(out2, "--name", "wc2", "-c", "topology.workers=2", "-c", "wordcount.repeat="+strconv.Itoa(repeat), "-c", "wordcount.emit.interval.secs=0.02")
	waitShowing(t, 2*time.Minute, func() string { return "no ack; submit: " + sub.out.String() }, func() bool { return ackedLines(out2) >= 5 })
	if ts := list(); len(ts) != 2 || ts[0]["name"] != "wc2" || ts[1]["name"] != "wc2" {
		t.Errorf("storm list --runtime native = %v, want wc2's two workers", ts)
	}
	// workers: both worker tasks, every executor in one of them.
	wout, werr, code := storm("workers", "wc2", "--runtime", "native", "--master", master, "--json")
	var ws []stormWorkerRow
	if code != 0 || json.Unmarshal([]byte(wout), &ws) != nil || len(ws) != 2 {
		t.Fatalf("storm workers wc2 --runtime native: exit %d %q %q; want two workers", code, wout, werr)
	}
	execs := map[string]int{}
	for i, w := range ws {
		if w.Topology != "wc2" || w.Worker == nil || *w.Worker != i || w.Host == "" || w.Port == 0 || w.TaskID == "" {
			t.Errorf("worker %d: %+v", i, w)
		}
		for c, n := range w.Executors {
			execs[c] += n
		}
	}
	if execs["sentences"] != 1 || execs["split"] != 2 || execs["count"] != 2 || len(execs) != 3 {
		t.Errorf("executors over the workers %v, want sentences×1 split×2 count×2", execs)
	}
	// SIGKILL of worker 1 (the one without the spout): only it is
	// launched again; worker 0 keeps its process and task, and the new
	// worker 1 announces itself to it.
	pids := workerPIDs(t, 2)
	if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitShowing(t, 3*time.Minute, func() string {
		return "acked " + strconv.Itoa(ackedLines(out2)) + " of " + strconv.Itoa(n*repeat) + "; submit: " + sub.out.String()
	}, func() bool { return ackedLines(out2) == n*repeat })
	if !strings.Contains(sub.out.String(), "starting worker 1 again") {
		t.Errorf("submit did not start worker 1 again: %s", sub.out.String())
	}
	after := workerPIDs(t, 2)
	if after[0] != pids[0] {
		t.Errorf("worker 0 is process %d, was %d: it should have run on", after[0], pids[0])
	}
	if after[1] == pids[1] {
		t.Errorf("the killed worker %d still runs", pids[1])
	}
	wout, _, _ = storm("workers", "wc2", "--runtime", "native", "--master", master, "--json")
	var again []stormWorkerRow
	if json.Unmarshal([]byte(wout), &again) != nil || len(again) != 2 || again[0].TaskID != ws[0].TaskID || again[1].TaskID == ws[1].TaskID {
		t.Errorf("workers after the kill %s; want worker 0's task %s kept, worker 1's %s replaced", wout, ws[0].TaskID, ws[1].TaskID)
	}

	// rebalance: three workers and three splits, launched anew (the spout
	// starts over and its sentences are acked again); an unknown
	// component or topology is refused with nothing changed.
	if _, errOut, code := storm("rebalance", "wc2", "--runtime", "native", "--master", master, "-e", "nosuch=2"); code != 1 || !strings.Contains(errOut, `no component "nosuch"`) {
		t.Errorf("rebalance -e nosuch=2: exit %d, %q", code, errOut)
	}
	if _, errOut, code := storm("rebalance", "nosuch", "--runtime", "native", "--master", master, "-n", "2"); code != 1 || !strings.Contains(errOut, `no native topology "nosuch"`) {
		t.Errorf("rebalance nosuch: exit %d, %q", code, errOut)
	}
	before := totalAcks(out2)
	if rout, errOut, code := storm("rebalance", "wc2", "--runtime", "native", "--master", master, "-n", "3", "-e", "split=3"); code != 0 || !strings.Contains(rout, "rebalancing wc2: 3 worker(s)") {
		t.Fatalf("rebalance -n 3 -e split=3: exit %d, %q %q", code, rout, errOut)
	}
	waitShowing(t, 2*time.Minute, func() string {
		return "rebalanced workers: " + wout + "; submit: " + sub.out.String() + "\nworkers' stderr:\n" + sandboxStderrs(filepath.Join(dir, "agent"), 3000)
	}, func() bool {
		wout, _, _ = storm("workers", "wc2", "--runtime", "native", "--master", master, "--json")
		var rows []stormWorkerRow
		if json.Unmarshal([]byte(wout), &rows) != nil || len(rows) != 3 {
			return false
		}
		execs := map[string]int{}
		for _, w := range rows {
			for c, n := range w.Executors {
				execs[c] += n
			}
		}
		return execs["split"] == 3 && execs["count"] == 2 && execs["sentences"] == 1
	})
	waitShowing(t, 3*time.Minute, func() string {
		return fmt.Sprintf("acks %d, want %d more than %d; submit: %s", totalAcks(out2), n*repeat, before, sub.out.String())
	}, func() bool { return totalAcks(out2) >= before+n*repeat })
}

func componentOf(info nativeInfo, id string) native.ComponentMetrics {
	for _, c := range info.Components {
		if c.Component == id {
			return c
		}
	}
	return native.ComponentMetrics{}
}

// totalAcks counts every ack the spout saw, replays of a sentence too.
func totalAcks(out string) int {
	files, _ := filepath.Glob(filepath.Join(out, "acked-*.txt"))
	n := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		n += len(strings.Fields(string(b)))
	}
	return n
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ackedLines counts the distinct sentence IDs the spout saw acked.
func ackedLines(out string) int {
	files, _ := filepath.Glob(filepath.Join(out, "acked-*.txt"))
	seen := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Fields(string(b)) {
			seen[l] = true
		}
	}
	return len(seen)
}

// workerPIDs are the running `agora storm worker` processes of this
// test's binary, by worker index ($AGORA_STORM_WORKER), once there are n.
func workerPIDs(t *testing.T, n int) []int {
	t.Helper()
	pids := make([]int, n)
	waitShowing(t, time.Minute, func() string { return fmt.Sprintf("not %d agora storm workers of %s: %v", n, agoraBin, pids) }, func() bool {
		found := 0
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "cmdline"))
			if err != nil || string(b) != agoraBin+"\x00storm\x00worker\x00" {
				continue
			}
			env, _ := os.ReadFile(filepath.Join(d, "environ"))
			for _, kv := range strings.Split(string(env), "\x00") {
				if w, err := strconv.Atoi(strings.TrimPrefix(kv, nativefw.EnvWorker+"=")); err == nil && kv != strconv.Itoa(w) && w >= 0 && w < n {
					pids[w], _ = strconv.Atoi(filepath.Base(d))
					found++
				}
			}
		}
		return found == n
	})
	return pids
}

// waitShowing polls cond until it holds, failing with what after limit.
// sandboxStderrs is the end of every non-empty stderr in the sandboxes
// under an agent's work_dir, for failure messages.
func sandboxStderrs(workDir string, n int) string {
	var b strings.Builder
	filepath.WalkDir(workDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "stderr" {
			return nil
		}
		data, _ := os.ReadFile(p)
		if len(data) == 0 {
			return nil
		}
		if len(data) > n {
			data = data[len(data)-n:]
		}
		fmt.Fprintf(&b, "== %s\n%s\n", p, data)
		return nil
	})
	return b.String()
}

func waitShowing(t *testing.T, limit time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", limit, what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startNativeStormCluster starts a master and one agent (plain
// processes) for a native Storm test, and writes the example word count
// under the test's directory dir; it returns dir, the master's address
// and the topology file. The agent offers a random port range of its
// own, not the default 31000-32000 that every other test's agents offer
// too: a worker binds its offered port, and a task of a test running
// beside it may hold the same one.
func startNativeStormCluster(t *testing.T) (dir, master, path string) {
	t.Helper()
	return startNativeStormClusterWith(t, state.Client{})
}

// startNativeStormClusterWith is startNativeStormCluster with more master
// flags (its --credentials and --authenticate_http_*, say), reading the
// master's state with mc.
func startNativeStormClusterWith(t *testing.T, mc state.Client, masterFlags ...string) (dir, master, path string) {
	t.Helper()
	dir = t.TempDir()
	master, path = startNativeStormClusterIn(t, dir, mc, masterFlags, nil)
	return dir, master, path
}

// startNativeStormClusterIn is startNativeStormClusterWith in dir, with
// more agent flags too (--ssl_ca_file for a master speaking TLS, say).
func startNativeStormClusterIn(t *testing.T, dir string, mc state.Client, masterFlags, agentFlags []string) (master, path string) {
	t.Helper()
	tier.Need(t, tier.Python, tier.PythonErr())
	_, err := multilang.FindStormPy(t.TempDir(), defaultStormHome())
	tier.Need(t, tier.Python, err)
	_, master = startBound(t, append([]string{"master", "--work_dir=" + filepath.Join(dir, "master"), "--port=0", "--allocation_interval=100ms"}, masterFlags...)...)
	first, last := clustertest.PortRange(100)
	startBound(t, append([]string{"agent", "--master=" + master, "--work_dir=" + filepath.Join(dir, "agent"), "--port=0",
		fmt.Sprintf("--resources=cpus:2;mem:2048;disk:1024;ports:[%d-%d]", first, last), "--switch_user=false", "--isolation=posix"}, agentFlags...)...)
	waitShowing(t, time.Minute, func() string { return "the agent registered" }, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m, err := mc.Master(ctx, master)
		return err == nil && len(m.Slaves) == 1
	})
	if path, err = wordcount.WriteTo(filepath.Join(dir, "example")); err != nil {
		t.Fatal(err)
	}
	return master, path
}
