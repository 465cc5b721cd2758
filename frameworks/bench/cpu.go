package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// LaunchCPU is the CPU time a launch run used per task that ended
// (finished or failed), from the run's start to its last terminal
// update. Machine counts every process on this machine: when the cluster
// runs here (agora dev), its master, agents and their tasks as well as
// this framework; against a remote cluster only this framework and
// whatever else runs here, so a low busy share then says nothing of the
// cluster's machines.
type LaunchCPU struct {
	// Machine is the busy time of all of this machine's CPUs (user,
	// system, interrupts; not idle, I/O wait or time stolen by a
	// hypervisor), in milliseconds per task.
	Machine float64 `json:"machine"`
	// Framework is this process's own CPU time, in milliseconds per task.
	Framework float64 `json:"framework"`
	// BusyPercent is the busy share of this machine's CPUs over the run:
	// near 100, the run was bound by CPU; well below, by waiting (or, on
	// a virtual machine, by time the hypervisor gave to others).
	BusyPercent float64 `json:"machine_busy_percent"`
	// CPUs is the number of CPUs the machine's counters cover.
	CPUs int `json:"cpus"`
}

// cpuSample is the machine's and this process's CPU counters at one
// moment; ok is false where the machine's could not be read.
type cpuSample struct {
	ok          bool
	busy, total uint64 // ticks of all CPUs, from /proc/stat
	cpus        int    // the CPUs /proc/stat lists (cpu0, cpu1, ...)
	self        time.Duration
}

// procStat is the file sampleCPU reads (a variable for tests).
var procStat = "/proc/stat"

func sampleCPU() cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile(procStat)
	if err != nil {
		return s
	}
	line, rest, _ := bytes.Cut(b, []byte{'\n'})
	busy, total, err := parseCPULine(line)
	if err != nil {
		return s
	}
	s.ok, s.busy, s.total = true, busy, total
	// The first line sums every online CPU, which may be more than this
	// process may run on (a cpuset, taskset): count them as it does.
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if len(line) > 3 && bytes.HasPrefix(line, []byte("cpu")) && line[3] >= '0' && line[3] <= '9' {
			s.cpus++
		}
	}
	if s.cpus == 0 {
		s.cpus = runtime.NumCPU()
	}
	return s
}

// parseCPULine reads the first line of /proc/stat ("cpu  user nice system
// idle iowait irq softirq steal guest guest_nice", in ticks; guest time is
// part of user already): busy is user+nice+system+irq+softirq, total
// adds idle, iowait and steal.
func parseCPULine(line []byte) (busy, total uint64, err error) {
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return 0, 0, fmt.Errorf("%s: first line %q is not the machine's cpu line", procStat, bytes.TrimSpace(line))
	}
	var v [8]uint64
	for i := range v {
		if i+1 >= len(f) {
			break
		}
		n, err := strconv.ParseUint(string(f[i+1]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: field %d of the cpu line: %w", procStat, i+1, err)
		}
		v[i] = n
	}
	busy = v[0] + v[1] + v[2] + v[5] + v[6]
	total = busy + v[3] + v[4] + v[7]
	if total == 0 {
		return 0, 0, errors.New(procStat + ": the cpu line counts no time")
	}
	return busy, total, nil
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// launchCPU is the CPU per task between two samples over ended tasks,
// nil without a machine's counters on both ends, no task, or no time
// counted.
func launchCPU(from, to cpuSample, ended int) *LaunchCPU {
	if !from.ok || !to.ok || ended <= 0 || to.total <= from.total || to.busy < from.busy {
		return nil
	}
	busy, total := to.busy-from.busy, to.total-from.total
	round := func(x float64) float64 { return math.Round(x*1000) / 1000 }
	return &LaunchCPU{
		Machine:   round(float64(busy) * 1000 / clockTicks / float64(ended)),
		Framework: round(float64(to.self-from.self) / float64(time.Millisecond) / float64(ended)),
		// The kernel's idle and iowait counters may step back a little
		// (proc(5)): never more than all of it.
		BusyPercent: min(100, math.Round(float64(busy)*1000/float64(total))/10),
		CPUs:        to.cpus,
	}
}
