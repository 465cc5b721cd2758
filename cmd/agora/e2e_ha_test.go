package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedcall "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// haCluster is a ZooKeeper server and the agora masters that elect a
// leader in it.
type haCluster struct {
	t     *testing.T
	zk    *zktest.Ensemble
	zkURL string
	addrs []string
	procs map[string]*proc
}

func newHACluster(t *testing.T) *haCluster {
	e := zktest.Start(t, 1)
	return &haCluster{t: t, zk: e, zkURL: e.URL("/agora"), procs: map[string]*proc{}}
}

// startMaster starts one more master (quorum 2, a 4 s ZooKeeper session).
func (hc *haCluster) startMaster() string {
	p, addr := startBound(hc.t, "master", "--zk="+hc.zkURL, "--quorum=2", "--zk_session_timeout=4s", "--port=0",
		"--agent_ping_timeout=1s", "--max_agent_ping_timeouts=30", "--allocation_interval=100ms")
	hc.procs[addr] = p
	hc.addrs = append(hc.addrs, addr)
	return addr
}

// noRedirect is a client that shows 307s instead of following them.
var noRedirect = &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// probeMaster GETs path on a master without following redirects.
func probeMaster(addr, path string) (code int, location string, err error) {
	resp, err := noRedirect.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// leaderOf returns which of addrs leads and acts (answers /master/state
// itself), or "".
func leaderOf(addrs []string) string {
	for _, a := range addrs {
		if code, _, err := probeMaster(a, "/master/state"); err == nil && code == http.StatusOK {
			return a
		}
	}
	return ""
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Three masters elect a leader in a real ZooKeeper; the others redirect.
// A checkpointing framework and an agent follow the leader through
// zk:// URLs. kill -9 of the leader in the middle of a workload: another
// master is elected, recovers the agent from the registry in ZooKeeper,
// the agent and the framework follow it, and every task finishes with
// its updates delivered.
func TestHAMastersFailOverThroughZooKeeper(t *testing.T) {
	hc := newHACluster(t)
	zkURL, dir := hc.zkURL, t.TempDir()
	startMaster := hc.startMaster
	// One master alone is elected but does not act without a quorum.
	first := startMaster()
	addrs, procs := hc.addrs, hc.procs
	// Elected, as it says, not merely answering: its standby API answers
	// 503 before it has joined the election, and a master started later
	// that joined first would be the oldest.
	waitUntil(t, "the lone master to be elected and answer 503", time.Minute, func() bool {
		code, _, err := probeMaster(first, "/master/state")
		return err == nil && code == http.StatusServiceUnavailable &&
			strings.Contains(procs[first].out.String(), "fewer masters than --quorum")
	})
	startMaster()
	startMaster()
	addrs = hc.addrs
	waitUntil(t, "the oldest master to lead once a quorum stands", time.Minute, func() bool { return leaderOf(addrs) == first })
	for _, a := range addrs[1:] {
		code, loc, err := probeMaster(a, "/master/state")
		if err != nil || code != http.StatusTemporaryRedirect || loc != "//"+first+"/master/state" {
			t.Fatalf("standby %s answered /master/state with %d %q (%v); want 307 to //%s/master/state", a, code, loc, err, first)
		}
		code, loc, _ = probeMaster(a, "/master/redirect")
		if code != http.StatusTemporaryRedirect || loc != "//"+first {
			t.Fatalf("standby %s /master/redirect: %d %q", a, code, loc)
		}
	}

	// What Mesos-aware tools read: ZooKeeper's own CLI prints the
	// leader's MasterInfo JSON from the oldest json.info_ znode.
	if _, err := os.Stat("/usr/share/zookeeper/bin/zkCli.sh"); err == nil {
		server := strings.TrimSuffix(strings.TrimPrefix(zkURL, "zk://"), "/agora")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, "/usr/share/zookeeper/bin/zkCli.sh", "-server", server, "get", "/agora/json.info_0000000000").CombinedOutput()
		cancel()
		port := strings.TrimPrefix(first, "127.0.0.1:")
		if err != nil || !strings.Contains(string(out), `"port":`+port) || !strings.Contains(string(out), `"address":{`) {
			t.Fatalf("zkCli.sh get of the leader znode: %v\n%s\nwant MasterInfo JSON with port %s", err, out, port)
		}
	} else if tier.Required() {
		t.Fatalf("zkCli.sh is missing (Debian's zookeeper package): %v", err)
	}

	start(t, "agent", "--master="+zkURL, "--work_dir="+filepath.Join(dir, "agent"), "--port=0",
		"--resources=cpus:4;mem:4096;disk:1024", "--switch_user=false")
	var agentID string
	waitUntil(t, "the agent to register with the leader", time.Minute, func() bool {
		s, err := getState("http://" + first)
		if err == nil && len(s.Slaves) == 1 {
			agentID = s.Slaves[0].ID
			return true
		}
		return false
	})

	const n = 20
	markerDir, err := os.MkdirTemp("/var/tmp", "agora-ha-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(markerDir)
	marker := filepath.Join(markerDir, "go")
	var (
		mu         sync.Mutex
		launched   bool
		subscribed int
		states     = map[string][]mesos.TaskState{}
	)
	checkpoint, failover := true, 3600.0
	var d *scheduler.Driver
	d, err = scheduler.New(scheduler.Config{
		Masters: []string{zkURL}, Codec: api.JSON,
		Framework: mesos.FrameworkInfo{User: "root", Name: "ha", Checkpoint: &checkpoint, FailoverTimeout: &failover},
		Backoff:   scheduler.Backoff{Min: 50 * time.Millisecond, Max: time.Second},
	}, scheduler.Funcs{
		OnSubscribed: func(context.Context, *schedcall.Event_Subscribed) {
			mu.Lock()
			subscribed++
			mu.Unlock()
		},
		OnOffers: func(ctx context.Context, offers []mesos.Offer) {
			mu.Lock()
			defer mu.Unlock()
			for _, o := range offers {
				if launched {
					d.Decline(ctx, []mesos.OfferID{o.ID}, time.Hour)
					continue
				}
				launched = true
				var tasks []mesos.TaskInfo
				for i := 0; i < n; i++ {
					res, _ := api.ParseResources("cpus:0.01;mem:16")
					tasks = append(tasks, mesos.TaskInfo{Name: "wait", TaskID: mesos.TaskID{Value: fmt.Sprintf("t%d", i)}, AgentID: o.AgentID,
						Command: &mesos.CommandInfo{Value: strp("while [ ! -e " + marker + " ]; do sleep 0.2; done")}, Resources: res})
				}
				d.Launch(ctx, []mesos.OfferID{o.ID}, tasks, scheduler.RefuseFor(time.Hour))
			}
		},
		OnUpdate: func(ctx context.Context, st mesos.TaskStatus) {
			mu.Lock()
			defer mu.Unlock()
			states[st.TaskID.Value] = append(states[st.TaskID.Value], st.GetState())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-runDone:
		case <-time.After(30 * time.Second):
		}
	}()
	count := func(want mesos.TaskState) int {
		mu.Lock()
		defer mu.Unlock()
		c := 0
		for _, ss := range states {
			for _, s := range ss {
				if s == want {
					c++
					break
				}
			}
		}
		return c
	}
	waitUntil(t, "every task running", 2*time.Minute, func() bool { return count(mesos.TASK_RUNNING) == n })

	// kill -9 the leader in the middle of the workload.
	old := procs[first]
	old.kill9(t)
	var next string
	waitUntil(t, "another master to lead", time.Minute, func() bool {
		next = leaderOf(addrs[1:])
		return next != ""
	})
	waitUntil(t, "the agent to re-register with the new leader, keeping its ID", 2*time.Minute, func() bool {
		s, err := getState("http://" + next)
		return err == nil && len(s.Slaves) == 1 && s.Slaves[0].ID == agentID
	})
	waitUntil(t, "the framework to re-subscribe with the new leader", 2*time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return subscribed >= 2 && d.Subscribed()
	})
	if err := os.WriteFile(marker, []byte("go"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "every task finished", 2*time.Minute, func() bool { return count(mesos.TASK_FINISHED) == n })
	mu.Lock()
	defer mu.Unlock()
	for id, ss := range states {
		for i, s := range ss {
			if s != mesos.TASK_STARTING && s != mesos.TASK_RUNNING && s != mesos.TASK_FINISHED {
				t.Errorf("task %s went %s (updates %v): a failover must lose no task", id, s, ss)
			}
			if i > 0 && s == mesos.TASK_FINISHED && i != len(ss)-1 {
				t.Errorf("task %s had updates after FINISHED: %v", id, ss)
			}
		}
	}
	var st struct {
		Frameworks []struct {
			ID    string `json:"id"`
			Tasks []any  `json:"tasks"`
		} `json:"frameworks"`
	}
	resp, err := http.Get("http://" + next + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&st)
	if len(st.Frameworks) != 1 || st.Frameworks[0].ID != d.FrameworkID() {
		t.Fatalf("the new leader knows frameworks %+v; want %s", st.Frameworks, d.FrameworkID())
	}
}

// watchOffers subscribes a framework straight to the master at addr (no
// redirects, no ZooKeeper) and records when each OFFERS event arrives,
// until the stream ends.
func watchOffers(t *testing.T, addr string) (offersAfter func(time.Time) int, subscribed <-chan struct{}) {
	t.Helper()
	body := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"watch","roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/scheduler", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := noRedirectStream.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe with %s: %v %v", addr, resp, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	var mu sync.Mutex
	var times []time.Time
	sub := make(chan struct{})
	go func() {
		r := api.NewRecordReader(resp.Body)
		for {
			rec, err := r.ReadRecord()
			if err != nil {
				return
			}
			var ev struct{ Type string }
			json.Unmarshal(rec, &ev)
			switch ev.Type {
			case "SUBSCRIBED":
				close(sub)
			case "OFFERS":
				mu.Lock()
				times = append(times, time.Now())
				mu.Unlock()
			}
		}
	}()
	return func(after time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, at := range times {
			if at.After(after) {
				n++
			}
		}
		return n
	}, sub
}

// noRedirectStream is noRedirect without a timeout, for event streams.
var noRedirectStream = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// A leader paused (SIGSTOP) for longer than its ZooKeeper session is
// replaced; when it runs again it is fenced at once: it sends no offer on
// the scheduler stream it still holds, answers with redirects to the new
// leader, and stands again as a candidate.
func TestPausedLeaderIsFencedWhenItResumes(t *testing.T) {
	hc := newHACluster(t)
	hc.startMaster()
	hc.startMaster()
	hc.startMaster()
	var first string // started together: any of them may be the oldest
	waitUntil(t, "a master to lead", time.Minute, func() bool {
		first = leaderOf(hc.addrs)
		return first != ""
	})
	start(t, "agent", "--master="+hc.zkURL, "--work_dir="+filepath.Join(t.TempDir(), "agent"), "--port=0",
		"--resources=cpus:2;mem:1024;disk:1024", "--switch_user=false")

	offersAfter, subscribed := watchOffers(t, first)
	select {
	case <-subscribed:
	case <-time.After(time.Minute):
		t.Fatal("no SUBSCRIBED from the leader")
	}
	waitUntil(t, "offers from the leader", time.Minute, func() bool { return offersAfter(time.Time{}) > 0 })

	old := hc.procs[first].cmd.Process
	if err := old.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var next string
	waitUntil(t, "another master to lead while the old one is paused", time.Minute, func() bool {
		for _, a := range hc.addrs {
			if a != first && leaderOf([]string{a}) != "" {
				next = a
			}
		}
		return next != ""
	})
	resumed := time.Now()
	if err := old.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the resumed master to redirect to the new leader", time.Minute, func() bool {
		code, loc, err := probeMaster(first, "/master/state")
		return err == nil && code == http.StatusTemporaryRedirect && loc == "//"+next+"/master/state"
	})
	// Give the resumed master's loop time to have sent anything it would
	// (several allocation intervals), then look.
	time.Sleep(2 * time.Second)
	if n := offersAfter(resumed); n != 0 {
		t.Fatalf("the resumed, replaced master sent %d offers after it ran again", n)
	}
	if leaderOf(hc.addrs) != next {
		t.Fatalf("after the old leader resumed, %q leads; want %s alone", leaderOf(hc.addrs), next)
	}
}

// Bad --zk input is refused with exit 2 and a message naming what is
// wrong, before anything starts.
func TestHAMasterRefusesBadZooKeeperFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--zk=zk://h1:2181"}, "names no znode path"},
		{[]string{"--zk=http://h1:2181/agora"}, "must start with zk://"},
		{[]string{"--zk=zk://h1:99999/agora"}, "not a number in 1-65535"},
		{[]string{"--zk=zk://h1:2181/agora", "--quorum=0"}, "--quorum must be at least 1"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, agoraBin, append([]string{"master", "--port=0"}, c.args...)...).CombinedOutput()
		cancel()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("agora master %v: %v, %q; want exit 2 saying %q", c.args, err, out, c.want)
		}
	}
}

// Restarting the ZooKeeper server under a leading master — a blip shorter
// than its session, as in a rolling restart of an ensemble — fences it for
// a moment at most but does not end its term: the same master object goes
// on leading, with no second election and no recovery.
func TestHALeaderSurvivesAZooKeeperRestart(t *testing.T) {
	hc := newHACluster(t)
	hc.startMaster()
	hc.startMaster()
	var leader string
	waitUntil(t, "a master to lead", time.Minute, func() bool {
		leader = leaderOf(hc.addrs)
		return leader != ""
	})
	s := hc.zk.Servers[0]
	s.Stop()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the same master to lead again", time.Minute, func() bool { return leaderOf(hc.addrs) == leader })
	out := hc.procs[leader].out.String()
	if n := strings.Count(out, "elected leading master"); n != 1 {
		t.Fatalf("the leader was elected %d times across a ZooKeeper restart; want its one term to go on:\n%s", n, out)
	}
}
