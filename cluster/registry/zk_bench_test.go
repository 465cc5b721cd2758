package registry

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	gozk "github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/zk/zktest"
)

// BenchmarkZKRegistryAgents reads back a registry of AGORA_BENCH_AGENTS
// (default 10,000) agents, as a new leading master does before it acts.
//
//	AGORA_BENCH_AGENTS=40000 go test -run - -bench ZKRegistryAgents -benchtime 3x ./cluster/registry/
func BenchmarkZKRegistryAgents(b *testing.B) {
	n := 10000
	if s := os.Getenv("AGORA_BENCH_AGENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("AGORA_BENCH_AGENTS=%q: %v", s, err)
		}
	}
	e := zktest.Start(b, 1)
	conn := zkConn(b, e)
	r, err := OpenZK(conn, "/agora/registry", nil)
	if err != nil {
		b.Fatal(err)
	}
	var batch []Change
	for i := 0; i < n; i++ {
		host := fmt.Sprintf("sim-%d", i)
		rec := AgentRecord{ID: fmt.Sprintf("S%d", i), State: AgentAdmitted, Info: &mesos.AgentInfo{Hostname: host, Port: new(int32(5051))}}
		rec.Info.Resources = benchAgentResources
		batch = append(batch, Change{Agent: &rec})
		if len(batch) == 500 || i == n-1 {
			if err := r.Apply(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Run("zookeeper", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			recs, err := r.Agents()
			if err != nil || len(recs) != n {
				b.Fatalf("read %d agents, %v; want %d", len(recs), err, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "agents/s")
	})
	// Through a standby's copy, caught up beforehand as it is while the
	// standby waits: what a new leader reads before it acts.
	b.Run("standby-copy", func(b *testing.B) {
		standby := zkConn(b, e)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			c := NewZKCache(func() *gozk.Conn { return standby }, "/agora/registry", nil)
			if _, err := c.Sync(true); err != nil {
				b.Fatal(err)
			}
			r.UseCache(c)
			b.StartTimer()
			recs, err := r.Agents()
			if err != nil || len(recs) != n {
				b.Fatalf("read %d agents, %v; want %d", len(recs), err, n)
			}
		}
		r.UseCache(nil)
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "agents/s")
	})
}

var benchAgentResources = func() []mesos.Resource {
	f := func(name string, v float64) mesos.Resource {
		return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
	}
	return []mesos.Resource{f("cpus", 20), f("mem", 10240), f("disk", 100000)}
}()
