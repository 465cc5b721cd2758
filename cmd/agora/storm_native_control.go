package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/frameworks/state"
	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/framework"
	"github.com/agora-cluster/agora/storm/native"
	nativefw "github.com/agora-cluster/agora/storm/native/framework"
)

// A native topology's submitting command is its framework; it serves the
// topology's control on an HTTP port of its own, given to the master as
// the framework's webui_url, where `agora storm rebalance|activate|
// deactivate --runtime native` find it.
//
// The topology's status (ACTIVE, INACTIVE) is kept here: a change is told
// to every running worker over its topology port (native.Tell) and set in
// the environment of the workers launched from then on, so that a worker
// launched again, or a rebalance, starts in it.

// nativeStatusEnv carries the topology's status to a worker.
const nativeStatusEnv = "AGORA_STORM_STATUS"

// nativeTellTimeout bounds telling one worker a status change: a worker
// just launched may not listen yet.
const nativeTellTimeout = 20 * time.Second

// nativeRebalance is the body of POST /rebalance.
type nativeRebalance struct {
	Workers   int            `json:"workers,omitempty"`
	Executors map[string]int `json:"executors,omitempty"`
	// WaitSecs, as Storm's rebalance wait: the topology is deactivated
	// for this long before its workers are launched again (and then has
	// its status of before).
	WaitSecs int `json:"wait_secs,omitempty"`
}

// nativeStatusReply is the answer of GET /status, /activate and
// /deactivate.
type nativeStatusReply struct {
	Status  string `json:"status"` // ACTIVE, INACTIVE or REBALANCING
	Workers int    `json:"workers"`
}

// nativeControl rebuilds a topology's workers for a rebalance.
type nativeControl struct {
	yaml    []byte
	top     *flux.Topology
	stormPy []byte

	mu          sync.Mutex
	conf        map[string]any // the bundle's configuration, as last launched
	executors   map[string]int
	workers     int
	status      native.Status // what the workers were last told
	rebalancing bool          // a rebalance waits out its --wait
	run         *nativefw.Run
	ctx         context.Context // the submitting command's: ends a waiting rebalance
	// ui serves the topologies page and its API (/ui/, /api/v1/, /).
	ui http.Handler
	// guard puts a change (POST /rebalance, /activate, /deactivate)
	// behind the page's credentials (nil: none asked).
	guard func(http.Handler) http.Handler
	// managedBy, if set, refuses every change (nativeSecurity.managedBy).
	managedBy string
}

// launch is the workers' count, environment and labels of conf with
// executors applied, the workers starting in status.
func (c *nativeControl) launch(conf map[string]any, executors map[string]int, status native.Status) (int, map[string]string, func(int) map[string]string, error) {
	top, err := native.WithParallelism(c.top, executors)
	if err != nil {
		return 0, nil, nil, err
	}
	workers, err := native.CheckWorkers(top, conf)
	if err != nil {
		return 0, nil, nil, err
	}
	bundle, err := native.Bundle(c.yaml, top, conf, c.stormPy)
	if err != nil {
		return 0, nil, nil, err
	}
	env := map[string]string{nativeBundleEnv: bundle, nativeStatusEnv: status.Encode()}
	return workers, env, executorLabels(native.Assign(top, workers)), nil
}

// errRebalancing refuses a change while a rebalance waits, as Nimbus
// refuses one of a REBALANCING topology.
func (c *nativeControl) errRebalancing() error {
	return fmt.Errorf("topology %q is REBALANCING: wait for its rebalance's wait to end", c.top.Name)
}

// rebalance launches the topology again with new worker and executor
// counts (0 and none: unchanged), at once or, with a wait, after
// deactivating it for that long. The workers launched have the status
// of before.
func (c *nativeControl) rebalance(ctx context.Context, req nativeRebalance) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rebalancing {
		return 0, c.errRebalancing()
	}
	if req.WaitSecs < 0 {
		return 0, fmt.Errorf("rebalance wait %d s: want 0 or more", req.WaitSecs)
	}
	conf := map[string]any{}
	for k, v := range c.conf {
		conf[k] = v
	}
	executors := map[string]int{}
	for k, v := range c.executors {
		executors[k] = v
	}
	for k, v := range req.Executors {
		executors[k] = v
	}
	if req.Workers != 0 {
		conf[native.KeyWorkers] = req.Workers
	}
	if len(executors) > 0 {
		p := map[string]any{}
		for k, v := range executors {
			p[k] = v
		}
		conf[native.KeyParallelism] = p
	}
	before := c.status
	workers, env, labels, err := c.launch(conf, executors, before)
	if err != nil {
		return 0, err
	}
	if req.WaitSecs == 0 {
		if err := c.run.Rebalance(ctx, workers, env, labels); err != nil {
			return 0, err
		}
		c.conf, c.executors, c.workers = conf, executors, workers
		return workers, nil
	}
	// Storm's rebalance wait: the spouts stop, the trees in flight
	// complete, then the workers are launched anew.
	if before.Active {
		// A worker not told goes on emitting until its relaunch: the
		// rebalance goes ahead all the same.
		if err := c.tell(ctx, false); err != nil {
			slog.Warn("native storm: rebalance wait", "topology", c.top.Name, "err", err)
		}
	}
	c.rebalancing = true
	go c.rebalanceAfter(time.Duration(req.WaitSecs)*time.Second, before, conf, executors, workers)
	return workers, nil
}

// rebalanceAfter launches the rebalanced workers once wait has passed,
// in status before (the new launch's generation of it).
func (c *nativeControl) rebalanceAfter(wait time.Duration, before native.Status, conf map[string]any, executors map[string]int, workers int) {
	select {
	case <-c.ctx.Done():
		return
	case <-time.After(wait):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rebalancing = false
	st := native.Status{Active: before.Active, Gen: c.status.Gen + 1}
	_, env, labels, err := c.launch(conf, executors, st)
	if err == nil {
		c.run.SetEnv(nativeStatusEnv, st.Encode())
		err = c.run.Rebalance(c.ctx, workers, env, labels)
	}
	if err != nil {
		slog.Error("native storm: rebalance after its wait", "topology", c.top.Name, "err", err)
		return
	}
	c.conf, c.executors, c.workers, c.status = conf, executors, workers, st
}

// setActive activates or deactivates the topology.
func (c *nativeControl) setActive(ctx context.Context, on bool) (nativeStatusReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rebalancing {
		return nativeStatusReply{}, c.errRebalancing()
	}
	err := c.tell(ctx, on)
	return nativeStatusReply{Status: c.status.String(), Workers: c.workers}, err
}

// tell sets the status (a new generation) for the workers launched from
// now on and tells every running worker (c.mu held). A worker that could
// not be told is named in the error; the status is kept all the same.
func (c *nativeControl) tell(ctx context.Context, on bool) error {
	st := native.Status{Active: on, Gen: c.status.Gen + 1}
	c.status = st
	c.run.SetEnv(nativeStatusEnv, st.Encode())
	addrs := c.run.Addresses()
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		if a == "" {
			continue // waiting for its launch, which has the status
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tctx, cancel := context.WithTimeout(ctx, nativeTellTimeout)
			defer cancel()
			if err := native.Tell(tctx, a, st); err != nil {
				errs[i] = fmt.Errorf("worker %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("topology %q is now %s, but not every worker could be told (a worker launched from now on starts %s): %w", c.top.Name, st, st, err)
	}
	return nil
}

// reply is the topology's status now.
func (c *nativeControl) reply() nativeStatusReply {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status.String()
	if c.rebalancing {
		s = "REBALANCING"
	}
	return nativeStatusReply{Status: s, Workers: c.workers}
}

// serve answers POST /rebalance, /activate and /deactivate and GET
// /status, and serves the topologies page, until ctx ends. The changes
// are behind the page's credentials and its CSRF guard (a JSON body or
// X-Requested-By, and no foreign Origin); /status stays open, for `agora
// storm list` and the page's status column. With managedBy every change
// is refused (403) and no page is served.
func (c *nativeControl) serve(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	change := func(pattern string, h http.HandlerFunc) {
		g := framework.ChangeGuard(h)
		if c.guard != nil {
			g = c.guard(g)
		}
		mux.Handle(pattern, g)
	}
	if c.managedBy != "" {
		// Whoever reaches the port may not change a topology its
		// manager runs: its kill and the page's are refused as well.
		change = func(pattern string, _ http.HandlerFunc) {
			mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, fmt.Sprintf("topology %s is managed by %s: this port changes nothing", c.top.Name, c.managedBy), http.StatusForbidden)
			})
		}
		change("POST /api/v1/topologies/{id}/kill", nil)
	}
	if c.ui != nil {
		mux.Handle("/ui/", c.ui)
		mux.Handle("/api/v1/", c.ui)
		mux.Handle("/{$}", c.ui)
	}
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { reply(w, c.reply()) })
	for path, on := range map[string]bool{"/activate": true, "/deactivate": false} {
		change("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			st, err := c.setActive(r.Context(), on)
			if err != nil {
				code := http.StatusBadGateway
				if st.Status == "" {
					code = http.StatusConflict
				}
				http.Error(w, err.Error(), code)
				return
			}
			reply(w, st)
		})
	}
	change("POST /rebalance", func(w http.ResponseWriter, r *http.Request) {
		var req nativeRebalance
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "rebalance: "+err.Error(), http.StatusBadRequest)
			return
		}
		workers, err := c.rebalance(r.Context(), req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply(w, map[string]int{"workers": workers})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	srv.Serve(ln)
}

// controlURL is the URL of ln as the master's side sees this host: the
// address this host reaches the master from, else its hostname; scheme
// is http or https.
func controlURL(master string, ln net.Listener, scheme string) string {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	host, _ := os.Hostname()
	if base, err := state.BaseURL(master); err == nil && !strings.HasPrefix(master, "zk://") {
		if c, err := net.DialTimeout("udp", strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://"), time.Second); err == nil {
			host, _, _ = net.SplitHostPort(c.LocalAddr().String())
			c.Close()
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// nativeControlURL is the control URL of the framework running native
// topology name on master's cluster.
func nativeControlURL(ctx context.Context, mc state.Client, master, name string) (string, error) {
	var m struct {
		Frameworks []struct {
			Name  string `json:"name"`
			WebUI string `json:"webui_url"`
			Tasks []struct {
				Name string `json:"name"`
			} `json:"tasks"`
		} `json:"frameworks"`
	}
	if err := mc.Get(ctx, master, "/master/state", &m); err != nil {
		return "", fmt.Errorf("find native topology %q on master %s: %w", name, master, err)
	}
	for _, f := range m.Frameworks {
		if f.Name != nativefw.Name {
			continue
		}
		for _, t := range f.Tasks {
			if t.Name != name {
				continue
			}
			if f.WebUI == "" {
				return "", fmt.Errorf("native topology %q: its framework gives no control address (submitted by an older agora?)", name)
			}
			return f.WebUI, nil
		}
	}
	return "", fmt.Errorf("no native topology %q runs on master %s", name, master)
}

// controlOptions are the credentials presented to a native topology's
// control: the page's credentials of its submitting command (submit's
// --http_credentials or --credentials), never the master's. The
// control's address is its framework's webui_url, which any framework
// registering under the native name may set: the master's credentials
// go to the master only.
type controlOptions struct {
	principal, secretFile string
	insecure              bool
	cred                  auth.Credential // resolved by check
	// tls verifies a control served over HTTPS (submit's --ssl_cert_file)
	// with the command's --ca_file (nil: the system's roots).
	tls *tls.Config
}

func (o *controlOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.principal, "control_principal", "", "with --runtime native: principal presented to the topology's submitting command, one of its page's\n"+
		"credentials (submit's --http_credentials or --credentials); the master's --principal never goes there")
	fs.StringVar(&o.secretFile, "control_secret_file", "", "with --runtime native: file holding --control_principal's secret")
	fs.BoolVar(&o.insecure, "control_insecure", false, "with --runtime native: send --control_principal's secret over plain HTTP to a submitting command\n"+
		"off this host (refused otherwise: anyone on the way can read it)")
}

// check reads the control's credentials; a principal without its secret
// (or the reverse) is an error naming the flag.
func (o *controlOptions) check() error {
	switch {
	case o.principal == "" && o.secretFile == "":
		return nil
	case o.principal == "":
		return errors.New("--control_secret_file needs --control_principal")
	case o.secretFile == "":
		return fmt.Errorf("--control_principal=%s needs its secret: --control_secret_file=FILE", o.principal)
	}
	b, err := os.ReadFile(o.secretFile)
	if err != nil {
		return fmt.Errorf("--control_secret_file: %w", err)
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if secret == "" {
		return fmt.Errorf("--control_secret_file %s is empty", o.secretFile)
	}
	o.cred = auth.Credential{Principal: o.principal, Secret: secret}
	return nil
}

// insecureControlError refuses to send the control's credentials over
// plain HTTP off this host.
type insecureControlError struct {
	principal, name, base string
}

func (e *insecureControlError) Error() string {
	return fmt.Sprintf("refusing to send the credentials of %s over plain HTTP to %s, the submitting command of topology %q, off this host: "+
		"run the command on that host, or pass --control_insecure to send them all the same", e.principal, e.base, e.name)
}

// client is the HTTP client of the control at base (of topology name):
// with the control's credentials, which go over plain HTTP only on this
// host's loopback unless --control_insecure, and follow no redirect
// elsewhere (auth.SameOrigin); without them, a plain client.
func (o controlOptions) client(name, base string) (*http.Client, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("native topology %q: its framework's control address %q is not an http(s) URL", name, base)
	}
	if o.cred.Principal == "" {
		return &http.Client{Transport: o.transport()}, nil
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) && !o.insecure {
		return nil, &insecureControlError{principal: o.cred.Principal, name: name, base: base}
	}
	return &http.Client{Transport: &auth.Transport{Base: o.transport(), Credential: o.cred, Redirect: auth.SameOrigin}}, nil
}

// transport verifies a control served over HTTPS with o.tls.
func (o controlOptions) transport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok || o.tls == nil {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.TLSClientConfig = o.tls.Clone()
	return t
}

// trust verifies the control's certificate with the CA in caFile (the
// command's --ca_file, the master's CA; "" keeps the system's roots).
func (o *controlOptions) trust(caFile string) error {
	if caFile == "" {
		return nil
	}
	cfg, err := tlsconf.ClientConfig(caFile)
	if err != nil {
		return fmt.Errorf("--ca_file: %w", err)
	}
	o.tls = cfg
	return nil
}

// statusClient asks controls for their status: no credentials, their
// certificates verified with o.tls.
func (o controlOptions) statusClient() *http.Client {
	return &http.Client{Transport: o.transport()}
}

// controlVerifyError explains a control whose certificate does not
// verify, saying what to pass (nil for any other error).
func controlVerifyError(name, base string, err error) error {
	if verr := tlsconf.VerifyError(base, err); verr != nil {
		return fmt.Errorf("native topology %q: its submitting command at %s: %w\n\n"+
			"Pass the CA that signed its certificate (its --ssl_cert_file): --ca_file=FILE (or set AGORA_CA_FILE)", name, base, verr)
	}
	return nil
}

// nativePost posts body to path of the control of native topology name
// and returns the answer's body; an answer other than 200 is an error
// with its text. mc finds the control on the master; ctl's credentials,
// if any, go to the control.
func nativePost(ctx context.Context, mc state.Client, ctl controlOptions, master, name, path string, body any) ([]byte, error) {
	base, err := nativeControlURL(ctx, mc, master, name)
	if err != nil {
		return nil, err
	}
	hc, err := ctl.client(name, base)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(body)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(framework.RequestedBy, "agora")
	// ctx bounds the call: telling the workers may take long.
	resp, err := hc.Do(hr)
	if verr := controlVerifyError(name, base, err); verr != nil {
		return nil, verr
	}
	if err != nil {
		return nil, fmt.Errorf("native topology %q: its submitting command at %s: %w", name, base, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(out))
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (the submitting command's page credentials: --control_principal and --control_secret_file)"
		}
		return nil, errors.New(msg)
	}
	return out, nil
}

// controlFailure reports err of cmd: a refusal to send credentials is a
// usage error (2), anything else a failure (1).
func controlFailure(stderr io.Writer, cmd string, err error) int {
	var insecure *insecureControlError
	if errors.As(err, &insecure) {
		fmt.Fprintf(stderr, "agora storm %s: %v\n", cmd, err)
		return 2
	}
	return stormFailure(stderr, cmd, err)
}

// nativeRebalanceCmd asks the submitting command of native topology name
// to launch it again with new counts.
func nativeRebalanceCmd(mc state.Client, ctl controlOptions, master, name string, req nativeRebalance, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	b, err := nativePost(ctx, mc, ctl, master, name, "/rebalance", req)
	if err != nil {
		return controlFailure(stderr, "rebalance", err)
	}
	var got map[string]int
	json.Unmarshal(b, &got)
	if req.WaitSecs > 0 {
		fmt.Fprintf(stdout, "rebalancing %s: deactivated; %d worker(s) in %d s\n", name, got["workers"], req.WaitSecs)
		return 0
	}
	fmt.Fprintf(stdout, "rebalancing %s: %d worker(s)\n", name, got["workers"])
	return 0
}

// nativeActivationCmd activates or deactivates native topology name
// through its submitting command, which tells every worker.
func nativeActivationCmd(mc state.Client, ctl controlOptions, master, name string, activate bool, stdout, stderr io.Writer) int {
	cmd := "deactivate"
	if activate {
		cmd = "activate"
	}
	// Telling a worker just launched may wait for it to listen.
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout+nativeTellTimeout)
	defer cancel()
	if _, err := nativePost(ctx, mc, ctl, master, name, "/"+cmd, struct{}{}); err != nil {
		return controlFailure(stderr, cmd, err)
	}
	fmt.Fprintf(stdout, "%sd %s\n", cmd, name)
	return 0
}

// nativeStatusOf asks the submitting command at control URL base for its
// topology's status, with hc (nil: a plain client).
func nativeStatusOf(ctx context.Context, hc *http.Client, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/status", nil)
	if err != nil {
		return "", err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var st nativeStatusReply
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&st) != nil || st.Status == "" {
		return "", fmt.Errorf("%s/status: %s", base, resp.Status)
	}
	return st.Status, nil
}
