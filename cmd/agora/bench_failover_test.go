package main

import (
	"context"
	"io"
	"log/slog"
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
	res, err := benchFailover(ctx, failoverConfig{Bin: agoraBin, ZK: u, Masters: 2, Agents: agents, TasksPerAgent: perAgent,
		Dir: t.TempDir(), SessionTimeout: 4 * time.Second, Timeout: 2 * time.Minute, Logger: log})
	if err != nil {
		t.Fatal(err)
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
	if res.NewLeaderPeakMB <= 0 {
		t.Fatalf("no peak RSS read for the new leader: %+v", *res)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
