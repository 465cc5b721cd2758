package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/frameworks/state"
)

func init() {
	register(command{name: "events", summary: "Print the master's event stream (tasks, agents, frameworks) as it happens", run: runEvents})
}

// eventStreamTransport connects within bounds; the stream itself has no
// timeout (a silent one is cut by the stream's watchdog instead).
var eventStreamTransport = &http.Transport{
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	TLSHandshakeTimeout:   10 * time.Second, // zero is none for a Transport of one's own
	ResponseHeaderTimeout: 30 * time.Second,
}

// eventTransport is eventStreamTransport verifying HTTPS masters with
// tlsConfig (--ca_file), or else with the CA the process trusts
// (LIBPROCESS_SSL_CA_FILE) or the system's roots. The stream is HTTP/1.1:
// the configuration is a copy, so no "h2" an HTTP/2 transport added to
// a shared one is offered.
func eventTransport(tlsConfig *tls.Config) http.RoundTripper {
	if tlsConfig == nil {
		tlsConfig = tlsconf.ProcessClient()
	}
	if tlsConfig == nil {
		return eventStreamTransport
	}
	t := eventStreamTransport.Clone()
	t.TLSClientConfig = tlsConfig.Clone()
	t.TLSClientConfig.NextProtos = nil
	return t
}

// eventStream is the master's operator event stream (a SUBSCRIBE call on
// /api/v1), read record by record.
type eventStream struct {
	base     string // the master's base URL (the leader's, for zk://)
	body     io.ReadCloser
	rr       *api.RecordReader
	watchdog *time.Timer
	silence  time.Duration
}

// subscribeEvents opens the event stream of the master at addr (host:port,
// http://host:port or zk://...) with cred. Nothing answering is a
// *state.UnreachableError, a refusal a *state.StatusError, as for the
// client's other reads, so masterFailure explains both. Closing the
// stream, or ctx ending, ends it.
func subscribeEvents(ctx context.Context, o *clientOptions) (*eventStream, error) {
	addr := o.master
	if zk.IsURL(addr) {
		u, err := zk.ParseURL(addr)
		if err != nil {
			return nil, err
		}
		if addr, err = zk.LeaderAddress(ctx, u, 10*time.Second); err != nil {
			return nil, &state.UnreachableError{Addr: u.String(), Err: err}
		}
	}
	// With TLS configured, "host:port" (and the leader ZooKeeper names)
	// is an HTTPS master, as for the client's other reads.
	if o.tls != nil && !strings.Contains(addr, "://") {
		addr = "https://" + strings.TrimSpace(addr)
	}
	base, err := state.BaseURL(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	body := []byte(`{"type":"SUBSCRIBE"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1", bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Accept", api.MediaJSON)
	// The credentials go with every request, the redirect from a
	// standby master to the leader included (over HTTPS or on this host:
	// never over plain HTTP to another host).
	hc := &http.Client{Transport: &auth.Transport{Base: eventTransport(o.tls), Credential: o.cred, Redirect: auth.LeaderRedirect}}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, &state.UnreachableError{Addr: addr, Err: ue.Err}
		}
		return nil, &state.UnreachableError{Addr: addr, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		cancel()
		return nil, &state.StatusError{URL: base + "/api/v1 (SUBSCRIBE)", Code: resp.StatusCode, Status: resp.Status, Message: strings.TrimSpace(string(b))}
	}
	// A redirect to the leader changes where the stream comes from.
	base = strings.TrimSuffix(strings.TrimSuffix(resp.Request.URL.String(), "/api/v1"), "/")
	s := &eventStream{base: base, body: closeFunc{resp.Body, cancel}, rr: api.NewRecordReader(resp.Body), silence: 30 * time.Second}
	// A silent stream is a dead one (a master gone without closing it):
	// the watchdog cuts it, which ends next with an error.
	s.watchdog = time.AfterFunc(s.silence, cancel)
	return s, nil
}

// closeFunc closes a body and then cancels its request.
type closeFunc struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c closeFunc) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// next returns the next event, heartbeats included, with its JSON record.
func (s *eventStream) next() (*master.Event, []byte, error) {
	b, err := s.rr.ReadRecord()
	if err != nil {
		if err == io.EOF {
			return nil, nil, errors.New("the master closed the event stream")
		}
		return nil, nil, fmt.Errorf("event stream: %w", err)
	}
	s.watchdog.Reset(s.silence)
	var ev master.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, nil, fmt.Errorf("event stream: undecodable event: %w", err)
	}
	if ev.GetType() == master.Event_SUBSCRIBED {
		if hb := ev.GetSubscribed().GetHeartbeatIntervalSeconds(); hb > 0 {
			s.silence = 3*time.Duration(hb*float64(time.Second)) + 5*time.Second
			s.watchdog.Reset(s.silence)
		}
	}
	return &ev, b, nil
}

func (s *eventStream) Close() error {
	s.watchdog.Stop()
	return s.body.Close()
}

// interruptible is ctx ended by Ctrl-C or SIGTERM.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func runEvents(args []string) int {
	var o clientOptions
	var count int
	var timeout time.Duration
	var heartbeats bool
	fs := newClientFlags("events", "[--json] [--count N] [--timeout D]",
		"Prints the master's operator event stream, one event a line, until interrupted:\n"+
			"first SUBSCRIBED (a summary of the cluster), then TASK_ADDED, TASK_UPDATED,\n"+
			"AGENT_ADDED, AGENT_REMOVED, FRAMEWORK_ADDED, FRAMEWORK_UPDATED and FRAMEWORK_REMOVED\n"+
			"as they happen. --json prints each event as the master sent it, one JSON object a line.",
		"agora events --json --count 10 --timeout 1m", &o, true)
	fs.IntVar(&count, "count", 0, "exit after this many events (0: no limit); heartbeats do not count")
	fs.DurationVar(&timeout, "timeout", 0, "exit after this long (0: no limit); with --count, not reaching it by then exits 1")
	fs.BoolVar(&heartbeats, "heartbeats", false, "print the master's heartbeats too")
	if code, done := o.parse(fs, args); done {
		return code
	}
	if count < 0 || timeout < 0 {
		fmt.Fprintln(os.Stderr, "agora events: --count and --timeout must not be negative")
		return 2
	}
	ctx, stop := interruptible(context.Background())
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	s, err := subscribeEvents(ctx, &o)
	if err != nil {
		return masterFailure("events", o.master, err)
	}
	defer s.Close()
	printed := 0
	for count == 0 || printed < count {
		ev, raw, err := s.next()
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "agora events: %v\n", err)
				return 1
			}
			if count > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				fmt.Fprintf(os.Stderr, "agora events: %d of %d events within --timeout=%s\n", printed, count, timeout)
				return 1
			}
			return 0 // interrupted, or --timeout without --count
		}
		if ev.GetType() == master.Event_HEARTBEAT && !heartbeats {
			continue
		}
		if o.json {
			var b bytes.Buffer
			if json.Compact(&b, raw) != nil {
				b.Reset()
				b.Write(raw)
			}
			b.WriteByte('\n')
			os.Stdout.Write(b.Bytes())
		} else {
			fmt.Println(eventLine(ev))
		}
		printed++
	}
	return 0
}

// eventLine is an event as one line: its type, then key=value fields.
func eventLine(ev *master.Event) string {
	f := []string{ev.GetType().String()}
	kv := func(k, v string) {
		if v != "" {
			if strings.ContainsAny(v, " \t\"=") {
				v = fmt.Sprintf("%q", v)
			}
			f = append(f, k+"="+v)
		}
	}
	switch ev.GetType() {
	case master.Event_SUBSCRIBED:
		st := ev.GetSubscribed().GetGetState()
		ts := st.GetGetTasks()
		kv("agents", fmt.Sprint(len(st.GetGetAgents().GetAgents())))
		kv("frameworks", fmt.Sprint(len(st.GetGetFrameworks().GetFrameworks())))
		kv("tasks", fmt.Sprint(len(ts.GetTasks())+len(ts.GetUnreachableTasks())))
		kv("completed_tasks", fmt.Sprint(len(ts.GetCompletedTasks())))
	case master.Event_TASK_ADDED:
		t := ev.GetTaskAdded().GetTask()
		kv("task", t.TaskID.Value)
		kv("name", t.Name)
		kv("framework", t.FrameworkID.Value)
		kv("agent", t.AgentID.Value)
		kv("state", t.GetState().String())
	case master.Event_TASK_UPDATED:
		u := ev.GetTaskUpdated()
		kv("task", u.Status.TaskID.Value)
		kv("framework", u.FrameworkID.Value)
		kv("agent", u.Status.GetAgentID().GetValue())
		kv("state", u.GetState().String())
		if u.Status.Reason != nil {
			kv("reason", u.Status.GetReason().String())
		}
		kv("message", u.Status.GetMessage())
	case master.Event_AGENT_ADDED:
		a := ev.GetAgentAdded().GetAgent()
		kv("agent", a.AgentInfo.GetID().GetValue())
		kv("hostname", a.AgentInfo.Hostname)
		kv("resources", resourceSummary(a.TotalResources))
	case master.Event_AGENT_REMOVED:
		kv("agent", ev.GetAgentRemoved().AgentID.Value)
	case master.Event_FRAMEWORK_ADDED, master.Event_FRAMEWORK_UPDATED:
		var fw master.Response_GetFrameworks_Framework
		if a := ev.GetFrameworkAdded(); a != nil {
			fw = a.Framework
		} else if u := ev.GetFrameworkUpdated(); u != nil {
			fw = u.Framework
		}
		kv("framework", fw.FrameworkInfo.GetID().GetValue())
		kv("name", fw.FrameworkInfo.Name)
		kv("active", fmt.Sprint(fw.Active))
	case master.Event_FRAMEWORK_REMOVED:
		fi := ev.GetFrameworkRemoved().FrameworkInfo
		kv("framework", fi.GetID().GetValue())
		kv("name", fi.Name)
	}
	return strings.Join(f, " ")
}

// resourceSummary is "cpus:2;mem:1024;disk:1024": the scalar resources
// summed by name, in Mesos's usual order.
func resourceSummary(rs []mesos.Resource) string {
	sums := scalarSums(rs)
	var parts []string
	for _, n := range []string{"cpus", "mem", "disk", "gpus"} {
		if v, ok := sums[n]; ok {
			parts = append(parts, n+":"+num(v))
		}
	}
	return strings.Join(parts, ";")
}

// scalarSums adds up the scalar resources by name.
func scalarSums(rs []mesos.Resource) map[string]float64 {
	sums := map[string]float64{}
	for _, r := range rs {
		if r.GetType() == mesos.SCALAR {
			sums[r.Name] += r.GetScalar().GetValue()
		}
	}
	return sums
}
