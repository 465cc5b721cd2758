package jobtracker

import (
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/job"
)

func TestOnHostMatchesNamesAndAddresses(t *testing.T) {
	hosts := []string{"dn1.example.com", "dn2.example.com", "10.0.0.1", "10.0.0.2"}
	for host, want := range map[string]bool{
		"dn1.example.com":  true,
		"DN1.Example.COM.": true,
		"dn1":              true, // short name of a split host
		"10.0.0.2":         true, // an agent registered by its IP
		"dn3.example.com":  false,
		"dn1.other.com":    false,
		"dn":               false,
		"10.0.0.3":         false,
		"10.0.0":           false,
		"":                 false,
	} {
		if got := onHost(hosts, host); got != want {
			t.Errorf("onHost(%v, %q) = %v, want %v", hosts, host, got, want)
		}
	}
	if !onHost([]string{"dn1"}, "dn1.example.com") {
		t.Error("a short split host should match the agent's full name")
	}
	if onHost(nil, "dn1") {
		t.Error("a map with no hosts is local nowhere")
	}
}

// A map whose split lives on A (as HDFS reports it: hostname and address)
// waits for A while the locality delay lasts, runs there when A offers a
// slot under either name, and runs elsewhere once the delay is over.
func TestMapWaitsForItsDataHostThenRunsElsewhere(t *testing.T) {
	cfg := testConfig(t)
	cfg.LocalityDelay = 5 * time.Second
	a := []string{"a.example.com", "10.1.0.1"}
	j := New(jobID, [][]string{a, a, a}, 0, cfg, t0)

	noAssign(t, j, t0, "b.example.com", job.Map, "waiting 5s more for a data-local slot")
	noAssign(t, j, at(4.9), "b.example.com", job.Map, "no map has data on b.example.com")
	// A, registered under its address, is data-local.
	if l := mustAssign(t, j, at(4.95), "10.1.0.1", job.Map); l.Locality != DataLocal {
		t.Fatalf("A by address got %+v", l)
	}
	// A, registered under its short name, too; and the wait starts over.
	if l := mustAssign(t, j, at(6), "a", job.Map); l.Locality != DataLocal {
		t.Fatalf("A by short name got %+v", l)
	}
	noAssign(t, j, at(6), "b.example.com", job.Map, "waiting 5s more")
	noAssign(t, j, at(10.9), "b.example.com", job.Map, "waiting")
	// The delay is over: B runs the last map, off its data.
	l := mustAssign(t, j, at(11), "b.example.com", job.Map)
	if l.Locality != OffSwitch {
		t.Fatalf("B after the delay got %+v", l)
	}
	st := j.Status()
	if got := st.Counters.Get("org.apache.hadoop.mapreduce.JobCounter", "DATA_LOCAL_MAPS"); got != 2 {
		t.Errorf("DATA_LOCAL_MAPS %d, want 2", got)
	}
	if got := st.Counters.Get("org.apache.hadoop.mapreduce.JobCounter", "OTHER_LOCAL_MAPS"); got != 1 {
		t.Errorf("OTHER_LOCAL_MAPS %d, want 1", got)
	}
}
