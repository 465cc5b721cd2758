package containerizer

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Usage is a container's resource usage with the field names of Mesos's
// ResourceStatistics, as /monitor/statistics reports it.
type Usage struct {
	Timestamp             float64 `json:"timestamp"`
	Processes             uint32  `json:"processes"`
	Threads               uint32  `json:"threads"`
	CPUsUserTimeSecs      float64 `json:"cpus_user_time_secs"`
	CPUsSystemTimeSecs    float64 `json:"cpus_system_time_secs"`
	CPUsLimit             float64 `json:"cpus_limit,omitempty"`
	CPUsNrPeriods         uint32  `json:"cpus_nr_periods"`
	CPUsNrThrottled       uint32  `json:"cpus_nr_throttled"`
	CPUsThrottledTimeSecs float64 `json:"cpus_throttled_time_secs"`
	MemTotalBytes         uint64  `json:"mem_total_bytes"`
	MemRSSBytes           uint64  `json:"mem_rss_bytes"`
	MemLimitBytes         uint64  `json:"mem_limit_bytes,omitempty"`
	MemCacheBytes         uint64  `json:"mem_cache_bytes"`
	MemAnonBytes          uint64  `json:"mem_anon_bytes"`
	MemFileBytes          uint64  `json:"mem_file_bytes"`
	MemMappedFileBytes    uint64  `json:"mem_mapped_file_bytes"`
	MemSwapBytes          uint64  `json:"mem_swap_bytes"`
	MemUnevictableBytes   uint64  `json:"mem_unevictable_bytes"`
}

// UsageReporter is implemented by containers that can report their
// resource usage. Native containers read it from their cgroup; Process
// containers add up /proc for the processes of their group (best effort:
// children that already exited count only once reaped).
type UsageReporter interface {
	Usage() (Usage, error)
}

func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func (c *nativeContainer) Usage() (Usage, error) {
	select {
	case <-c.done:
		return Usage{}, ErrExited
	default:
	}
	return c.cgUsage()
}

func (c *nativeContainer) cgUsage() (Usage, error) {
	u := Usage{Timestamp: now(), CPUsLimit: c.cpus}
	if err := c.cg.usage(&u); err != nil {
		return Usage{}, err
	}
	if b := c.cpuBase; b != nil {
		// A pooled cgroup's CFS counters and CPU times count its earlier
		// containers too.
		u.CPUsNrPeriods = uint32(sub(uint64(u.CPUsNrPeriods), b.NrPeriods))
		u.CPUsNrThrottled = uint32(sub(uint64(u.CPUsNrThrottled), b.NrThrottled))
		u.CPUsThrottledTimeSecs = max(0, u.CPUsThrottledTimeSecs-float64(b.ThrottledTime)/1e9)
		u.CPUsUserTimeSecs = max(0, u.CPUsUserTimeSecs-float64(b.UserTime)/1e9)
		u.CPUsSystemTimeSecs = max(0, u.CPUsSystemTimeSecs-float64(b.SystemTime)/1e9)
	}
	// The cgroup's pids counter counts threads; processes are listed.
	u.Threads = u.Processes
	if pids, err := c.cg.procs(); err == nil {
		u.Processes = uint32(len(pids))
	}
	return u, nil
}

// sub is a-b, or 0 if b is larger.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func (c *process) Usage() (Usage, error) {
	c.mu.Lock()
	reaped := c.reaped
	c.mu.Unlock()
	if reaped {
		return Usage{}, ErrExited
	}
	return groupUsage(c.pid, c.startTime), nil
}

func (c *adopted) Usage() (Usage, error) {
	if !c.st.alive() {
		return Usage{}, ErrExited
	}
	return groupUsage(c.st.Pid, c.st.StartTime), nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// groupUsage adds up the processes of group pgid started no earlier than
// its leader.
func groupUsage(pgid int, leaderStart uint64) Usage {
	u := Usage{Timestamp: now()}
	page := uint64(os.Getpagesize())
	for _, pid := range groupMembers(pgid, leaderStart) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 22 {
			continue
		}
		// f[i] is field i+3: utime 14, stime 15, cutime 16, cstime 17,
		// num_threads 20, rss 24 (pages).
		field := func(n int) uint64 { v, _ := strconv.ParseUint(f[n-3], 10, 64); return v }
		u.Processes++
		u.Threads += uint32(field(20))
		u.CPUsUserTimeSecs += float64(field(14)+field(16)) / clockTicks
		u.CPUsSystemTimeSecs += float64(field(15)+field(17)) / clockTicks
		rss := field(24) * page
		u.MemTotalBytes += rss
		anon, file := statusRSS(pid)
		u.MemRSSBytes += anon
		u.MemAnonBytes += anon
		u.MemFileBytes += file
		u.MemCacheBytes += file
	}
	return u
}

// statusRSS reads RssAnon and RssFile (+ RssShmem) from /proc/PID/status.
func statusRSS(pid int) (anon, file uint64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "RssAnon":
			anon = kb << 10
		case "RssFile", "RssShmem":
			file += kb << 10
		}
	}
	return anon, file
}
