package dns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/master"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/frameworks/state"
)

// follow keeps the view current: it finds the leading master, loads its
// /master/state, then reads its operator API event stream until the
// stream ends, and starts over (a new leader is found the same way). The
// records are rebuilt whole on each (re)subscription only; in between,
// each event changes the records it touches.
func (r *Resolver) follow(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		leader, err := r.resync(ctx)
		if err == nil {
			err = r.stream(ctx, leader)
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("lost the master's event stream; serving the last known records and retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff *= 2; backoff > 2*time.Second {
			backoff = 2 * time.Second
		}
	}
}

func (r *Resolver) stateClient() state.Client {
	return state.Client{HTTP: &http.Client{Timeout: time.Duration(r.cfg.StateTimeout) * time.Second,
		Transport: &auth.Transport{Credential: r.cfg.credential()}}}
}

// resync loads /master/state from the leader and replaces the view with
// it, unless the event stream changed the view meanwhile (the stream is
// newer then). It returns the leader's host:port.
func (r *Resolver) resync(ctx context.Context) (string, error) {
	r.mu.Lock()
	seq := r.seq
	r.mu.Unlock()
	var errs []error
	for _, src := range r.sources() {
		var s masterState
		if err := r.stateClient().Get(ctx, src, "/master/state", &s); err != nil {
			errs = append(errs, err)
			continue
		}
		leader := src
		if ip, port := pidHostPort(s.Leader); ip != nil {
			leader = net.JoinHostPort(ip.String(), strconv.Itoa(port))
			if strings.HasPrefix(src, "https://") { // the pid carries no scheme
				leader = "https://" + leader
			}
		}
		if zk.IsURL(src) || leader != src {
			// Mesos-DNS's LoadMasterStateFailover: read the leader's own state.
			var ls masterState
			if err := r.stateClient().Get(ctx, leader, "/master/state", &ls); err == nil {
				s = ls
			}
		}
		r.mu.Lock()
		if r.seq == seq {
			r.view.resetFromState(&s)
			r.resyncs.Add(1)
		}
		r.mu.Unlock()
		r.changed()
		return leader, nil
	}
	return "", resyncError(errors.Join(errs...))
}

// resyncError says why no master's state could be read: a master that
// answered 401 or 403 did answer, and retrying will not help until the
// credentials change, which the operator must be told.
func resyncError(err error) error {
	var se *state.StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusUnauthorized:
			return fmt.Errorf("the master asks for credentials: set mesosAuthentication \"basic\" and mesosCredentials in the configuration, or pass --principal and --secret_file to agora dns: %w", err)
		case http.StatusForbidden:
			return fmt.Errorf("the master refused this principal: %w", err)
		}
	}
	return fmt.Errorf("no master answered: %w", err)
}

// sources are where the leader is looked for: ZooKeeper first, then the
// static masters.
func (r *Resolver) sources() []string {
	var out []string
	if r.cfg.ZK != "" {
		out = append(out, r.cfg.ZK)
	}
	return append(out, r.cfg.Masters...)
}

// streamClient connects within bounds; the stream itself has no timeout
// (the watchdog cuts a silent one). It is made per stream, so that it
// trusts what the process trusts when it connects; stream closes its idle
// connections when done.
func streamClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
		TLSClientConfig:       tlsconf.ProcessClient(),
	}}
}

// stream subscribes to the leader's operator API and applies its events
// until the stream ends or falls silent for three heartbeats.
func (r *Resolver) stream(ctx context.Context, leader string) error {
	base, err := state.BaseURL(leader)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The stream is asked for in protobuf: every task's every update
	// crosses it, and decoding protobuf costs a fraction of JSON (in a
	// dev cluster launching tasks, the resolver's JSON decoding was about
	// a tenth of the cluster's CPU). A master that answers JSON anyway is
	// read as JSON.
	sub, _ := (&master.Call{Type: master.Call_SUBSCRIBE}).Marshal()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1", bytes.NewReader(sub))
	req.Header.Set("Content-Type", api.MediaProtobuf)
	req.Header.Set("Accept", api.MediaProtobuf)
	r.cfg.credential().Apply(req)
	client := streamClient()
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("SUBSCRIBE to %s: %w", leader, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("SUBSCRIBE to %s: %s", leader, resp.Status)
	}
	decode := func(b []byte, ev *master.Event) error { return json.Unmarshal(b, ev) }
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == api.MediaProtobuf {
		decode = func(b []byte, ev *master.Event) error { return ev.Unmarshal(b) }
	}
	r.subscriptions.Add(1)
	// A silent stream is a dead one: the watchdog cuts it.
	silence := 30 * time.Second
	watchdog := time.AfterFunc(silence, cancel)
	defer watchdog.Stop()
	rr := api.NewRecordReader(resp.Body)
	for {
		b, err := rr.ReadRecord()
		if err != nil {
			return fmt.Errorf("event stream from %s: %w", leader, err)
		}
		watchdog.Reset(silence)
		var ev master.Event
		if err := decode(b, &ev); err != nil {
			r.log.Warn("undecodable operator event; skipped", "err", err)
			continue
		}
		r.events.Add(1)
		switch ev.GetType() {
		case master.Event_HEARTBEAT:
			continue
		case master.Event_SUBSCRIBED:
			if hb := ev.Subscribed.GetHeartbeatIntervalSeconds(); hb > 0 {
				silence = 3*time.Duration(hb*float64(time.Second)) + 5*time.Second
				watchdog.Reset(silence)
			}
		}
		r.mu.Lock()
		if ev.GetType() == master.Event_SUBSCRIBED {
			r.view.leader = r.leaderEndpoint(leader)
		}
		r.update(r.view.applyEvent(&ev))
		r.seq++
		r.mu.Unlock()
	}
}

// leaderEndpoint keeps what /master/state said of the leader when it is
// the same master, else takes the address the stream was read from.
func (r *Resolver) leaderEndpoint(addr string) endpoint {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	e := endpoint{host: host, ip: hostIP(host), port: p}
	if r.view.leader.ip.Equal(e.ip) && r.view.leader.port == p {
		return r.view.leader
	}
	return e
}
