package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agora-cluster/agora/frameworks/state"
	"github.com/agora-cluster/agora/storm/flux"
	"github.com/agora-cluster/agora/storm/native"
	nativefw "github.com/agora-cluster/agora/storm/native/framework"
)

// A native topology's submitting command is its framework; it serves the
// topology's control on an HTTP port of its own, given to the master as
// the framework's webui_url, where `agora storm rebalance --runtime
// native` finds it.

// nativeRebalance is the body of POST /rebalance.
type nativeRebalance struct {
	Workers   int            `json:"workers,omitempty"`
	Executors map[string]int `json:"executors,omitempty"`
}

// nativeControl rebuilds a topology's workers for a rebalance.
type nativeControl struct {
	yaml    []byte
	top     *flux.Topology
	stormPy []byte

	mu        sync.Mutex
	conf      map[string]any // the bundle's configuration, as last launched
	executors map[string]int
	run       *nativefw.Run
}

// launch is the workers' count, environment and labels of conf with
// executors applied.
func (c *nativeControl) launch(conf map[string]any, executors map[string]int) (int, map[string]string, func(int) map[string]string, error) {
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
	return workers, map[string]string{nativeBundleEnv: bundle}, executorLabels(native.Assign(top, workers)), nil
}

// rebalance launches the topology again with new worker and executor
// counts (0 and none: unchanged).
func (c *nativeControl) rebalance(ctx context.Context, req nativeRebalance) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	workers, env, labels, err := c.launch(conf, executors)
	if err != nil {
		return 0, err
	}
	if err := c.run.Rebalance(ctx, workers, env, labels); err != nil {
		return 0, err
	}
	c.conf, c.executors = conf, executors
	return workers, nil
}

// serve answers POST /rebalance until ctx ends.
func (c *nativeControl) serve(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rebalance", func(w http.ResponseWriter, r *http.Request) {
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
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"workers": workers})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	srv.Serve(ln)
}

// controlURL is the URL of ln as the master's side sees this host: the
// address this host reaches the master from, else its hostname.
func controlURL(master string, ln net.Listener) string {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	host, _ := os.Hostname()
	if base, err := state.BaseURL(master); err == nil && !strings.HasPrefix(master, "zk://") {
		if c, err := net.DialTimeout("udp", strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://"), time.Second); err == nil {
			host, _, _ = net.SplitHostPort(c.LocalAddr().String())
			c.Close()
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// nativeControlURL is the control URL of the framework running native
// topology name on master's cluster.
func nativeControlURL(ctx context.Context, master, name string) (string, error) {
	var m struct {
		Frameworks []struct {
			Name  string `json:"name"`
			WebUI string `json:"webui_url"`
			Tasks []struct {
				Name string `json:"name"`
			} `json:"tasks"`
		} `json:"frameworks"`
	}
	if err := (state.Client{}).Get(ctx, master, "/master/state", &m); err != nil {
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

// nativeRebalanceCmd asks the submitting command of native topology name
// to launch it again with new counts.
func nativeRebalanceCmd(master, name string, req nativeRebalance, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), stormRequestTimeout)
	defer cancel()
	base, err := nativeControlURL(ctx, master, name)
	if err != nil {
		return stormFailure(stderr, "rebalance", err)
	}
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/rebalance", bytes.NewReader(body))
	if err != nil {
		return stormFailure(stderr, "rebalance", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return stormFailure(stderr, "rebalance", fmt.Errorf("native topology %q: its submitting command at %s: %w", name, base, err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return stormFailure(stderr, "rebalance", errors.New(strings.TrimSpace(string(b))))
	}
	var got map[string]int
	json.Unmarshal(b, &got)
	fmt.Fprintf(stdout, "rebalancing %s: %d worker(s)\n", name, got["workers"])
	return 0
}
