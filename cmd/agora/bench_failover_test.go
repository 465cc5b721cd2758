package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/zk"
	"github.com/agora-cluster/agora/cluster/zk/zktest"
)

// A small `agora bench failover`: two masters in a real ZooKeeper, 50
// simulated agents × 2 tasks. After kill -9 of the leader every agent
// re-registers with the new leader under its ID, the new leader offers
// every agent's resources, and the framework re-subscribes and hears
// every task RUNNING again.
func TestBenchFailoverSmall(t *testing.T) {
	e := zktest.Start(t, 1)
	u, err := zk.ParseURL(e.URL("/agora"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const agents, perAgent = 50, 2
	gcBefore, limitBefore := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(gcBefore)
	// AgentsGOGC -1: this process collects nothing from the kill until
	// every agent re-registered, under a memory limit, and puts both back.
	res, err := benchFailover(ctx, failoverConfig{Bin: agoraBin, ZK: u, Masters: 2, Agents: agents, TasksPerAgent: perAgent,
		Dir: t.TempDir(), SessionTimeout: 4 * time.Second, Timeout: 2 * time.Minute, AgentsGOGC: -1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	gcAfter := debug.SetGCPercent(gcBefore)
	if limitAfter := debug.SetMemoryLimit(-1); gcAfter != gcBefore || limitAfter != limitBefore {
		t.Errorf("after the run GOGC is %d and the memory limit %d; want them back at %d and %d", gcAfter, limitAfter, gcBefore, limitBefore)
	}
	t.Logf("%+v", *res)
	if st := res.AgentStats; st.Reregistrations < agents || st.Refusals != 0 || st.TasksLaunched != agents*perAgent {
		t.Fatalf("agent stats %+v: want every agent re-registered under its ID (%d), no refusal, %d tasks launched once", st, agents, agents*perAgent)
	}
	// Causality, not speed: nothing registers with or is offered by a
	// master before it is elected.
	if res.Reregistered < res.ElectedSeconds || res.FirstOffer < res.ElectedSeconds || res.Reconciled < res.Resubscribed {
		t.Fatalf("phases out of order: %+v", *res)
	}
	if res.LeadingSeconds <= 0 || res.LeadingSeconds > res.Reregistered {
		t.Fatalf("the new leader acted %.3f s after the kill; want after it, and before every agent re-registered (%.3f s)", res.LeadingSeconds, res.Reregistered)
	}
	// Every agent's re-registration is on the timeline, each step after
	// the one before it; attempts that failed are counted by cause.
	tl := res.AgentsTimeline
	if tl.Registered.N < agents || tl.Sent.N < tl.Registered.N || tl.Answered.N < tl.Registered.N {
		t.Fatalf("timeline %+v: want every one of %d agents sent, answered and registered", tl, agents)
	}
	if tl.Sent.P50 > tl.Answered.P50 || tl.Answered.P50 > tl.Registered.P50 || tl.Registered.Max > res.Reregistered {
		t.Fatalf("timeline %+v out of order (every agent re-registered %.3f s after the kill)", tl, res.Reregistered)
	}
	if res.AgentsLearned < res.ElectedSeconds-1 || res.AgentsLearned > res.Reregistered {
		t.Fatalf("the agents learned of the new leader %.3f s after the kill; want about its election (%.3f s), before they re-registered (%.3f s)",
			res.AgentsLearned, res.ElectedSeconds, res.Reregistered)
	}
	if st := res.AgentStats; st.FailedUnreachable+st.FailedNotLeading > st.FailedAttempts {
		t.Fatalf("agent stats %+v: more failures by cause than failures", st)
	}
	if res.NewLeaderPeakMB <= 0 {
		t.Fatalf("no peak RSS read for the new leader: %+v", *res)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// actingSince reads when a master last began to lead from its log.
func TestActingSinceReadsTheLastTerm(t *testing.T) {
	p := t.TempDir() + "/master.log"
	log := `time=2026-12-05T01:26:40.100Z level=INFO msg="standing for election"
time=2026-12-05T01:26:42.848Z level=INFO msg="elected leading master" id=a term=1
time=2026-12-05T01:27:00.000Z level=WARN msg="no longer the leading master"
time=2026-12-05T01:27:03.145Z level=INFO msg="elected leading master" id=a term=2 recovery=296ms
time=2026-12-05T01:27:04.000Z level=INFO msg="agent re-registered after master restart"
`
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, ok := actingSince(p)
	want := time.Date(2026, 12, 5, 1, 27, 3, 145e6, time.UTC)
	if !ok || !got.Equal(want) {
		t.Fatalf("actingSince = %v, %v; want %v", got, ok, want)
	}
	if err := os.WriteFile(p, []byte("time=2026-12-05T01:26:40.100Z level=INFO msg=\"standing for election\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok := actingSince(p); ok {
		t.Fatalf("actingSince of a master that never led = %v; want none", got)
	}
}
