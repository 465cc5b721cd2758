package master_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// An agent that comes back to a new master from another of its addresses
// (the record's pid names one it no longer uses) is re-admitted without a
// registry write: after a failover every agent of a cluster whose agents
// reach the master from several addresses would otherwise wait for one.
// The record keeps its pid. A record without a pid still gets one.
func TestReadmissionFromAnotherAddressWritesNothing(t *testing.T) {
	reg := openRegistry(t, "bolt")
	c := clustertest.Start(t, clustertest.Options{Registry: reg})
	id := c.Agents[0].ID()
	c.Agents[0].Stop()
	c.StopMaster()
	rec := agentRecord(t, reg)
	rec.PID = "slave(1)@192.0.2.7:" + strconv.Itoa(int(rec.Info.GetPort()))
	putRecord(t, reg, rec)
	c.StartMaster()

	// The agent as the record has it (its info unchanged), from 127.0.0.1.
	own := clustertest.Reregistration(id, rec.Info.GetHostname(), 0)
	info := *rec.Info
	own.Register.Info = &info
	before := metric(t, c.MasterURL, "master/registry_changes")
	if code, body := registerFrom(t, c.MasterURL, own, auth.Credential{}, "127.0.0.1"); code != http.StatusOK {
		t.Fatalf("re-registration of agent %s from 127.0.0.1 (its record names 192.0.2.7): %d %q, want 200", id, code, body)
	}
	if n := metric(t, c.MasterURL, "master/registry_changes"); n != before {
		t.Fatalf("re-admitting agent %s made %v registry writes, want none", id, n-before)
	}
	if got := agentRecord(t, reg); got.PID != rec.PID {
		t.Fatalf("the record's pid is %q, want %q kept", got.PID, rec.PID)
	}
}
