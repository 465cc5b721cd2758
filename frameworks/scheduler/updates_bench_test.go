package scheduler

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/agentsim"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/registry"
	"github.com/agora-cluster/agora/frameworks/offers"
)

// BenchmarkStatusUpdates measures the status updates an SDK framework
// handles and acknowledges per second: a master and 20 simulated agents
// (cluster/agentsim: the real agent protocol, tasks are timers that end
// at once) in this process, and the packer framework launching b.N tasks
// as fast as offers allow. Each task brings three updates (STARTING,
// RUNNING, FINISHED), each acknowledged by the driver.
//
//	go test -run - -bench StatusUpdates -benchtime 20000x ./frameworks/scheduler/
func BenchmarkStatusUpdates(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	m, err := master.New(master.Config{Hostname: "localhost", IP: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port,
		AllocationInterval: 20 * time.Millisecond, Registry: registry.NewMemory(),
		MaxCompletedTasksPerFramework: 1000, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := m.Server(nil)
	loopDone := make(chan struct{})
	go func() { m.Run(ctx); close(loopDone) }()
	go srv.Serve(ln)
	fleet, err := agentsim.Start(ctx, agentsim.Config{Master: ln.Addr().String(), Agents: 20, Resources: "cpus:16;mem:65536",
		TaskDuration: time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); fleet.Wait(); srv.Close(); <-loopDone }()
	for deadline := time.Now().Add(time.Minute); fleet.Registered() < 20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the simulated agents did not register")
		}
	}

	p := newPacker(b.N, "u", "true", offers.Need{CPUs: 0.01, Mem: 1, Role: "*"})
	d, err := New(Config{Masters: []string{ln.Addr().String()}, Framework: framework("updates", 0)}, p.handler())
	if err != nil {
		b.Fatal(err)
	}
	p.d = d
	b.ResetTimer()
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { d.Run(runCtx); close(ran) }()
	select {
	case <-p.done:
	case <-time.After(10 * time.Minute):
		b.Fatal("the tasks did not finish within 10 minutes")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	<-ran
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished != b.N || len(p.failed) > 0 {
		b.Fatalf("%d of %d tasks finished, %d failed", p.finished, b.N, len(p.failed))
	}
	b.ReportMetric(float64(p.withUUID)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
}
