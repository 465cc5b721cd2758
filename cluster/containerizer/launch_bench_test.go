package containerizer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLaunch launches and waits for `/bin/true` containers, one or 8
// at a time, with plain processes and with full isolation (new cgroups, or
// cgroups from a pool of 16), and reports the
// CPU each container cost the machine (this process and its children),
// the time Launch took and the containers per second.
//
//	go test -run xxx -bench Launch -benchtime 500x ./cluster/containerizer/
func BenchmarkLaunch(b *testing.B) {
	for _, par := range []int{1, 8} {
		b.Run(fmt.Sprintf("posix/par=%d", par), func(b *testing.B) { benchLaunch(b, Process{}, par) })
		for _, pool := range []int{0, 16} {
			name := "cgroups"
			if pool > 0 {
				name = "cgroups-pooled"
			}
			b.Run(fmt.Sprintf("%s/par=%d", name, par), func(b *testing.B) {
				if os.Geteuid() != 0 {
					b.Skip("needs root")
				}
				n, err := NewNative(NativeConfig{Root: fmt.Sprintf("agora-test/bench-%d", os.Getpid()), CgroupPool: pool})
				if err != nil {
					b.Skip(err)
				}
				b.Cleanup(func() {
					_ = n.Close()
					for _, dir := range cgroupDirs(n, "") {
						_ = os.Remove(dir)
						_ = os.Remove(filepath.Dir(dir))
					}
				})
				benchLaunch(b, n, par)
			})
		}
	}
}

func cpuTime() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	d := func(tv syscall.Timeval) time.Duration { return time.Duration(tv.Nano()) }
	return d(self.Utime) + d(self.Stime) + d(children.Utime) + d(children.Stime)
}

func benchLaunch(b *testing.B, cz Containerizer, par int) {
	dir := b.TempDir()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		launch time.Duration
		ids    = make(chan int)
	)
	cpu0, t0 := cpuTime(), time.Now()
	b.ResetTimer()
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				sandbox := filepath.Join(dir, fmt.Sprint(i))
				if err := os.Mkdir(sandbox, 0o755); err != nil {
					b.Error(err)
					return
				}
				start := time.Now()
				c, err := cz.Launch(context.Background(), Spec{ID: fmt.Sprint("bench-", i), Path: "/bin/true",
					Dir: sandbox, Stdout: filepath.Join(sandbox, "stdout"), CPUs: 0.1, MemMB: 32})
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				launch += time.Since(start)
				mu.Unlock()
				<-c.Done()
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		ids <- i
	}
	close(ids)
	wg.Wait()
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n/1000, "cpu-ms/op")
	b.ReportMetric(float64(launch.Microseconds())/n/1000, "launch-ms/op")
	b.ReportMetric(n/time.Since(t0).Seconds(), "containers/s")
}

// BenchmarkCgroupLifecycle is the cgroup part of a container alone, as a
// launch and its end do it: a new cgroup (create with the start limits,
// the CFS quota once the task runs, the emptiness check, remove) against
// a pooled one (take, the CFS quota, the emptiness check, reset and
// release). It reports the CPU each cycle cost this process; the kernel's
// deferred work for removed cgroups (freeing them after an RCU grace
// period, in kernel threads) is not in it.
//
//	go test -run xxx -bench CgroupLifecycle -benchtime 2000x ./cluster/containerizer/
func BenchmarkCgroupLifecycle(b *testing.B) {
	for _, pool := range []int{0, 4} {
		name := "new"
		if pool > 0 {
			name = "pooled"
		}
		b.Run(name, func(b *testing.B) {
			if os.Geteuid() != 0 {
				b.Skip("needs root")
			}
			n, err := NewNative(NativeConfig{Root: fmt.Sprintf("agora-test/cgbench-%d", os.Getpid()), CgroupPool: pool})
			if err != nil {
				b.Skip(err)
			}
			if pool > 0 && n.pool == nil {
				b.Skip("no cgroup pool on cgroup v2")
			}
			b.Cleanup(func() {
				_ = n.Close()
				for _, dir := range cgroupDirs(n, "") {
					_ = os.Remove(dir)
					_ = os.Remove(filepath.Dir(dir))
				}
			})
			lim := n.limits(Spec{CPUs: 0.1, MemMB: 32})
			start := lim
			start.cfsPeriod, start.cfsQuota = 0, 0
			for n.pool != nil && len(n.pool.idleNames()) < pool {
				time.Sleep(time.Millisecond)
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cg, _, err := n.newCgroup(n.Root()+"/c", start)
				if err != nil {
					b.Fatal(err)
				}
				if err := cg.setCFS(lim); err != nil {
					b.Fatal(err)
				}
				if err := killCgroup(cg); err != nil {
					b.Fatal(err)
				}
				if g, ok := cg.(*v1Group); ok && n.pool != nil && n.pool.release(g, true) {
					continue
				}
				if err := removeCgroup(cg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkCgroupJoin is what joining a container's cgroup costs in wall
// time, spaced as launches are (30 ms apart): this process moved whole
// (its pid written to cgroup.procs, as the agent moved the init) against
// the calling thread alone (0 written to tasks, as the init now joins).
// Moving a process waits for an RCU grace period unless another move came
// just before; a thread moving itself does not (cgroup v1 only).
//
//	go test -run xxx -bench CgroupJoin -benchtime 50x ./cluster/containerizer/
func BenchmarkCgroupJoin(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	h, err := detectHierarchy("/sys/fs/cgroup")
	if err != nil || h.version() != 1 {
		b.Skip("needs cgroup v1")
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("agora-test/join-%d", os.Getpid())
	cg, err := h.create(name, limits{})
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() { _ = removeCgroup(cg) })
	g := cg.(*v1Group)
	// back is where this process came from in the pids controller.
	back := "/sys/fs/cgroup/pids"
	for _, line := range strings.Split(string(own), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && f[1] == "pids" {
			back = filepath.Join(back, f[2])
		}
	}
	pid := strconv.Itoa(os.Getpid())
	for _, c := range []struct{ name, in, out, value string }{
		{"process", g.file("pids", "cgroup.procs"), filepath.Join(back, "cgroup.procs"), pid},
		{"thread", g.file("pids", "tasks"), filepath.Join(back, "tasks"), "0"},
	} {
		b.Run(c.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			value := c.value
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				time.Sleep(30 * time.Millisecond)
				b.StartTimer()
				if err := writeCgroupFile(c.in, value); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := writeCgroupFile(c.out, value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
