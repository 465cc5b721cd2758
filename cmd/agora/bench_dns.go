package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/miekg/dns"

	"github.com/agora-cluster/agora/cluster/api"
	agoradns "github.com/agora-cluster/agora/frameworks/dns"
)

func init() {
	benchCommands["dns"] = command{name: "dns", summary: "DNS answers/s and latency from a second process against a resolver holding N tasks", run: runBenchDNS}
}

// The DNS benchmark runs a resolver that follows a stand-in master (its
// /master/state and operator event stream, serving N running tasks of
// framework "marathon" on 100 agents), then starts this program again as
// a second process that sends queries over UDP — A for app-i.marathon.agora,
// SRV for _app-i._tcp.marathon.agora, and one in ten for a name that does
// not exist — keeping --clients queries outstanding, as dnsperf does, for
// --duration. It then turns tasks unhealthy through the event stream and
// times how long each takes to leave the answers.

type benchDNSLoad struct {
	Queries     int     `json:"queries"`
	Answered    int     `json:"answered"`
	Timeouts    int     `json:"timeouts"`
	Wrong       int     `json:"wrong_answers"`
	Seconds     float64 `json:"seconds"`
	AnswersPerS float64 `json:"answers_per_second"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
}

type benchDNSResult struct {
	Tasks   int          `json:"tasks"`
	Clients int          `json:"clients"`
	Load    benchDNSLoad `json:"load"`
	// Unhealthy is, over --changes tasks turned unhealthy one at a time,
	// the time from the event being written to the resolver no longer
	// answering the task's name.
	Changes        int     `json:"changes"`
	UnhealthyP50Ms float64 `json:"unhealthy_leaves_p50_ms"`
	UnhealthyMaxMs float64 `json:"unhealthy_leaves_max_ms"`
	LoadSeconds    float64 `json:"initial_load_seconds"`
}

func runBenchDNS(args []string) int {
	fs := flag.NewFlagSet("agora bench dns", flag.ContinueOnError)
	tasks := fs.Int("tasks", 10000, "running tasks the resolver holds")
	clients := fs.Int("clients", 16, "queries kept outstanding by the load process")
	duration := fs.Duration("duration", 10*time.Second, "how long the load runs")
	changes := fs.Int("changes", 20, "tasks turned unhealthy one by one, each timed until it leaves the answers")
	asJSON := fs.Bool("json", false, "print JSON")
	load := fs.String("load", "", "(internal) run as the load process against this UDP address")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *tasks <= *changes || *clients <= 0 {
		fmt.Fprintln(os.Stderr, "agora bench dns: want --tasks > --changes and --clients > 0")
		return 2
	}
	if *load != "" {
		res, err := dnsLoad(*load, *tasks, *clients, *duration)
		if err != nil {
			fmt.Fprintln(os.Stderr, "agora bench dns (load):", err)
			return 1
		}
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return 0
	}
	res, err := benchDNS(*tasks, *clients, *changes, *duration)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench dns:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		return 0
	}
	l := res.Load
	fmt.Printf("resolver with %d tasks (loaded in %.2fs); load process with %d outstanding UDP queries for %.1fs\n", res.Tasks, res.LoadSeconds, res.Clients, l.Seconds)
	fmt.Printf("  %d queries, %d answered, %d timed out, %d wrong: %.0f answers/s, latency p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		l.Queries, l.Answered, l.Timeouts, l.Wrong, l.AnswersPerS, l.P50Ms, l.P99Ms, l.MaxMs)
	fmt.Printf("  a task turned unhealthy left the answers after p50 %.3f ms, max %.3f ms (%d changes)\n", res.UnhealthyP50Ms, res.UnhealthyMaxMs, res.Changes)
	return 0
}

// fakeDNSMaster serves /master/state and the operator event stream for n
// running tasks; push sends an event to the open stream.
type fakeDNSMaster struct {
	addr   string
	state  []byte
	sub    []byte
	events chan []byte
}

func benchTaskName(i int) string { return "app-" + strconv.Itoa(i) }

func newFakeDNSMaster(ctx context.Context, n int) (*fakeDNSMaster, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeDNSMaster{addr: ln.Addr().String(), events: make(chan []byte, 16)}
	const agents = 100
	fwID := mesos.FrameworkID{Value: "bench-F0000"}
	var slaves, stateTasks []map[string]any
	gs := &master.Response_GetState{GetAgents: &master.Response_GetAgents{}, GetTasks: &master.Response_GetTasks{},
		GetFrameworks: &master.Response_GetFrameworks{Frameworks: []master.Response_GetFrameworks_Framework{
			{FrameworkInfo: mesos.FrameworkInfo{ID: &fwID, Name: "marathon", User: "root"}, Active: true, Connected: true}}}}
	for a := 0; a < agents; a++ {
		id := fmt.Sprintf("bench-S%d", a)
		ip := fmt.Sprintf("127.0.%d.%d", a/250, a%250+1)
		pid := "slave(1)@" + ip + ":5051"
		slaves = append(slaves, map[string]any{"id": id, "pid": pid, "hostname": ip, "port": 5051})
		port := int32(5051)
		gs.GetAgents.Agents = append(gs.GetAgents.Agents, master.Response_GetAgents_Agent{
			AgentInfo: mesos.AgentInfo{ID: &mesos.AgentID{Value: id}, Hostname: ip, Port: &port}, PID: &pid, Active: true})
	}
	running := mesos.TASK_RUNNING
	for i := 0; i < n; i++ {
		agent := fmt.Sprintf("bench-S%d", i%agents)
		port := uint64(31000 + i/agents)
		id := benchTaskName(i) + ".instance"
		stateTasks = append(stateTasks, map[string]any{"id": id, "name": benchTaskName(i), "framework_id": fwID.Value, "slave_id": agent,
			"state": "TASK_RUNNING", "resources": map[string]any{"ports": fmt.Sprintf("[%d-%d]", port, port)},
			"statuses": []map[string]any{{"state": "TASK_RUNNING"}}})
		gs.GetTasks.Tasks = append(gs.GetTasks.Tasks, mesos.Task{Name: benchTaskName(i), TaskID: mesos.TaskID{Value: id}, FrameworkID: fwID,
			AgentID: mesos.AgentID{Value: agent}, State: &running,
			Resources: []mesos.Resource{{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: port, End: port}}}}}})
	}
	if f.state, err = json.Marshal(map[string]any{"leader": "master@" + f.addr, "leader_info": map[string]any{"hostname": "localhost"},
		"slaves": slaves, "frameworks": []map[string]any{{"id": fwID.Value, "name": "marathon", "tasks": stateTasks}}}); err != nil {
		ln.Close()
		return nil, err
	}
	hb := 15.0
	if f.sub, err = api.JSON.Marshal(&master.Event{Type: master.Event_SUBSCRIBED, Subscribed: &master.Event_Subscribed{GetState: gs, HeartbeatIntervalSeconds: &hb}}); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /master/state", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(f.state)
	})
	mux.HandleFunc("POST /api/v1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", api.MediaJSON)
		rw := api.NewRecordWriter(w)
		if rw.WriteRecord(f.sub) != nil {
			return
		}
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-f.events:
				if rw.WriteRecord(ev) != nil {
					return
				}
			}
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return f, nil
}

// unhealthy is the event that turns task i unhealthy.
func (f *fakeDNSMaster) unhealthy(i int) []byte {
	running, no := mesos.TASK_RUNNING, false
	b, _ := api.JSON.Marshal(&master.Event{Type: master.Event_TASK_UPDATED, TaskUpdated: &master.Event_TaskUpdated{
		FrameworkID: mesos.FrameworkID{Value: "bench-F0000"}, State: &running,
		Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: benchTaskName(i) + ".instance"}, State: &running, Healthy: &no}}})
	return b
}

func benchDNS(n, clients, changes int, duration time.Duration) (*benchDNSResult, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fm, err := newFakeDNSMaster(ctx, n)
	if err != nil {
		return nil, err
	}
	cfg := agoradns.DefaultConfig()
	cfg.Masters = []string{fm.addr}
	cfg.Listener, cfg.Port, cfg.HTTPOn, cfg.RefreshSeconds = "127.0.0.1", 0, false, 3600
	r, err := agoradns.New(cfg, agoradns.Options{})
	if err != nil {
		return nil, err
	}
	ls, err := r.Listen()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx, ls) }()
	defer func() {
		cancel()
		select {
		case <-runDone:
		case <-time.After(30 * time.Second):
		}
	}()
	udp := ls.UDP.LocalAddr().String()
	for r.Stats().Tasks < n || r.Stats().Subscriptions == 0 {
		if time.Since(start) > 2*time.Minute {
			return nil, fmt.Errorf("the resolver holds %d of %d tasks after 2 minutes", r.Stats().Tasks, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res := &benchDNSResult{Tasks: n, Clients: clients, Changes: changes, LoadSeconds: round3(time.Since(start).Seconds())}

	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "bench", "dns", "--load", udp, "--tasks", strconv.Itoa(n),
		"--clients", strconv.Itoa(clients), "--duration", duration.String(), "--changes", "0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("load process: %v", err)
	}
	if err := json.Unmarshal(out.Bytes(), &res.Load); err != nil {
		return nil, fmt.Errorf("load process said %q: %v", out.String(), err)
	}

	// Changes: the last tasks are turned unhealthy one at a time.
	var took []float64
	for c := 0; c < changes; c++ {
		i := n - 1 - c
		name := benchTaskName(i) + ".marathon.agora."
		t0 := time.Now()
		fm.events <- fm.unhealthy(i)
		for {
			in, err := dns.Exchange(newQuery(name, dns.TypeA), udp)
			if err == nil && in.Rcode == dns.RcodeNameError {
				break
			}
			if time.Since(t0) > 30*time.Second {
				return nil, fmt.Errorf("task %d still answered 30s after turning unhealthy", i)
			}
			time.Sleep(time.Millisecond) // leave the CPU to the resolver
		}
		took = append(took, float64(time.Since(t0).Microseconds())/1000)
	}
	sort.Float64s(took)
	res.UnhealthyP50Ms, res.UnhealthyMaxMs = round3(percentile(took, 50)), round3(percentile(took, 100))
	return res, nil
}

func newQuery(name string, t uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	return m
}

// dnsLoad is the load process: clients goroutines, each on its own UDP
// socket, send one query, wait for its answer (2s at most), and go on.
func dnsLoad(addr string, n, clients int, duration time.Duration) (*benchDNSLoad, error) {
	// Queries packed in advance, so the load process spends its CPU on
	// sockets; the ID is patched per query.
	var packed [][]byte
	var want []int // expected rcode
	for i := 0; i < 4096; i++ {
		k := rand.IntN(n)
		name, t, rc := benchTaskName(k)+".marathon.agora.", dns.TypeA, dns.RcodeSuccess
		switch i % 10 {
		case 1, 3, 5, 7:
			name, t = "_"+benchTaskName(k)+"._tcp.marathon.agora.", dns.TypeSRV
		case 9:
			name, rc = "nosuch-"+strconv.Itoa(k)+".marathon.agora.", dns.RcodeNameError
		}
		b, err := newQuery(name, t).Pack()
		if err != nil {
			return nil, err
		}
		packed, want = append(packed, b), append(want, rc)
	}
	var queries, answered, timeouts, wrong atomic.Int64
	lat := make([][]float64, clients)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for c := 0; c < clients; c++ {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func(c int, conn net.Conn) {
			defer wg.Done()
			defer conn.Close()
			buf := make([]byte, 65535)
			q := make([]byte, 512)
			var id uint16 = uint16(c) << 10
			for i := c; time.Now().Before(deadline); i++ {
				p := packed[i%len(packed)]
				q = append(q[:0], p...)
				id++
				q[0], q[1] = byte(id>>8), byte(id)
				t0 := time.Now()
				if _, err := conn.Write(q); err != nil {
					errc <- err
					return
				}
				queries.Add(1)
				conn.SetReadDeadline(t0.Add(2 * time.Second))
				for {
					m, err := conn.Read(buf)
					if err != nil {
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							timeouts.Add(1)
							break
						}
						errc <- err
						return
					}
					if m < 12 || buf[0] != q[0] || buf[1] != q[1] {
						continue // a late answer to an earlier query
					}
					lat[c] = append(lat[c], float64(time.Since(t0).Microseconds())/1000)
					answered.Add(1)
					if int(buf[3]&0x0f) != want[i%len(packed)] {
						wrong.Add(1)
					}
					break
				}
			}
		}(c, conn)
	}
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	var all []float64
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Float64s(all)
	secs := duration.Seconds()
	return &benchDNSLoad{Queries: int(queries.Load()), Answered: int(answered.Load()), Timeouts: int(timeouts.Load()), Wrong: int(wrong.Load()),
		Seconds: round3(secs), AnswersPerS: round3(float64(answered.Load()) / secs),
		P50Ms: round3(percentile(all, 50)), P99Ms: round3(percentile(all, 99)), MaxMs: round3(percentile(all, 100))}, nil
}
