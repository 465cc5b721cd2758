package containerizer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
