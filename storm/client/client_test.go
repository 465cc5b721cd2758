package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// Nothing listening: a clear error naming the address, at once.
func TestNimbusNotThere(t *testing.T) {
	addr := clustertest.RefusedAddr(t)
	c, err := New(addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.ClusterInfo(ctx)
	if err == nil || !strings.Contains(err.Error(), "nimbus at "+addr+" is not reachable") {
		t.Fatalf("ClusterInfo against nothing = %v; want an error saying nimbus at %s is not reachable", err, addr)
	}
}

// silentServer accepts connections and never answers, until the test ends.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; conn.Close() }()
		}
	}()
	return ln.Addr().String()
}

// A Nimbus that does not answer: the call ends after CallTimeout, or when
// its context is cancelled, saying so.
func TestCallsAreBounded(t *testing.T) {
	addr := silentServer(t)
	c, _ := New(addr, Options{CallTimeout: 300 * time.Millisecond})
	defer c.Close()
	_, err := c.ClusterInfo(context.Background())
	if err == nil || !strings.Contains(err.Error(), "getClusterInfo at "+addr+": no answer within 300ms") {
		t.Fatalf("ClusterInfo against a silent server = %v; want no answer within 300ms", err)
	}

	c2, _ := New(addr, Options{CallTimeout: time.Hour})
	defer c2.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	err = c2.Kill(ctx, "words", 0)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "killTopologyWithOpts words") {
		t.Fatalf("Kill cancelled = %v; want context.Canceled naming the call", err)
	}
}

func TestNewNeedsAnAddress(t *testing.T) {
	if _, err := New("", Options{}); err == nil {
		t.Fatal("New with no address succeeded")
	}
	c, err := New("nimbus.example", Options{})
	if err != nil || c.Addr() != "nimbus.example:6627" {
		t.Fatalf("New(nimbus.example) = %v, %v; want port 6627", c, err)
	}
}

// A topology Nimbus could not run is refused before anything is sent,
// naming what is wrong.
func TestSubmitRefusesBadTopologies(t *testing.T) {
	shell := ShellComponent{Command: "python3", Script: "x.py"}
	out := map[string]StreamInfo{DefaultStream: {OutputFields: []string{"w"}}}
	spout := Component{Shell: shell, Streams: out}
	from := func(c, s string, g Grouping) []Input {
		return []Input{{From: StreamID{ComponentID: c, StreamID: s}, Grouping: g}}
	}
	for _, tc := range []struct {
		name string
		top  Topology
		err  string
	}{
		{"no spouts", Topology{}, "the topology has no spouts"},
		{"no command", Topology{Spouts: map[string]Component{"s": {Streams: out}}}, `spout "s" has no shell command`},
		{"unknown component", Topology{Spouts: map[string]Component{"s": spout},
			Bolts: map[string]Component{"b": {Shell: shell, Inputs: from("t", DefaultStream, Grouping{Kind: Shuffle})}}},
			`bolt "b" subscribes to unknown component "t"`},
		{"unknown stream", Topology{Spouts: map[string]Component{"s": spout},
			Bolts: map[string]Component{"b": {Shell: shell, Inputs: from("s", "other", Grouping{Kind: Shuffle})}}},
			`bolt "b" subscribes to stream "other", which "s" does not declare`},
		{"unknown grouping", Topology{Spouts: map[string]Component{"s": spout},
			Bolts: map[string]Component{"b": {Shell: shell, Inputs: from("s", DefaultStream, Grouping{Kind: 42})}}},
			`bolt "b": unknown grouping 42`},
		{"fields without fields", Topology{Spouts: map[string]Component{"s": spout},
			Bolts: map[string]Component{"b": {Shell: shell, Inputs: from("s", DefaultStream, Grouping{Kind: Fields})}}},
			`bolt "b": fields grouping on "s" without fields`},
		{"spout with inputs", Topology{Spouts: map[string]Component{"s": {Shell: shell, Streams: out,
			Inputs: from("s", DefaultStream, Grouping{Kind: Shuffle})}}}, `spout "s" has inputs`},
	} {
		c, _ := New(clustertest.RefusedAddr(t), Options{})
		err := c.Submit(context.Background(), "words", "/jar", "", tc.top)
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "submit words") {
			t.Errorf("%s: Submit = %v; want an error containing %q", tc.name, err, tc.err)
		}
	}
}
