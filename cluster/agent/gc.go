package agent

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Sandboxes of finished tasks and executors are garbage-collected once
// they are older than --gc_delay, and sooner when the disk fills: as in
// Mesos, the age allowed is gc_delay × max(0, 1 − gc_disk_headroom −
// disk usage), checked every --disk_watch_interval. The sweep looks at the
// sandbox tree itself (run directories by modification time), so it works
// the same after an agent restart.

// gcLoop runs the sandbox garbage collector until ctx ends.
func (a *Agent) gcLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.DiskWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.collectGarbage(time.Now())
		}
	}
}

// maxSandboxAge is how old a finished sandbox may get at this disk usage.
func (a *Agent) maxSandboxAge() time.Duration {
	measure := diskUsage
	if a.diskUsage != nil {
		measure = a.diskUsage
	}
	usage := measure(a.workDir)
	f := 1 - a.cfg.GCDiskHeadroom - usage
	if f < 0 {
		f = 0
	}
	return time.Duration(float64(a.cfg.GCDelay) * f)
}

// diskUsage is the used fraction of the file system holding dir.
func diskUsage(dir string) float64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Blocks == 0 {
		return 0
	}
	return 1 - float64(st.Bavail)/float64(st.Blocks)
}

// collectGarbage removes finished run directories older than the allowed
// age, with their checkpoints, or recycles them; it returns how many left
// the tree.
func (a *Agent) collectGarbage(now time.Time) int {
	limit := a.maxSandboxAge()
	active := map[string]bool{}
	a.mu.Lock()
	for _, t := range a.tasks {
		if t.sandbox != "" {
			active[filepath.Clean(t.sandbox)] = true
		}
		if t.meta != "" {
			active[filepath.Clean(t.meta)] = true
		}
	}
	a.mu.Unlock()
	for _, dir := range a.activeExecutorDirs() {
		active[filepath.Clean(dir)] = true
	}
	removed, recycled := a.sandboxes.removeStale(), 0 // sandboxrecycle.go
	for _, root := range []string{filepath.Join(a.workDir, "slaves"), filepath.Join(a.workDir, "meta", "slaves")} {
		runs, _ := filepath.Glob(filepath.Join(root, "*", "frameworks", "*", "executors", "*", "runs", "*"))
		for _, run := range runs {
			if active[filepath.Clean(run)] {
				continue
			}
			info, err := os.Lstat(run)
			if err != nil || !info.IsDir() || now.Sub(info.ModTime()) < limit {
				continue
			}
			// A task may have replaced runs, its executor directory or
			// executors/ with a link: the glob went through it, and removing
			// what it found would remove what the link points at.
			if !realDirs(root, filepath.Dir(run)) {
				continue
			}
			switch a.recycleSandbox(run) { // sandboxrecycle.go
			case recycledIntoPool:
				removed++
				recycled++
				continue
			case removedInstead:
				removed++
				continue
			case removalFailed:
				continue
			}
			if err := os.RemoveAll(run); err != nil {
				a.log.Warn("sandbox garbage collection failed", "dir", run, "err", err)
				continue
			}
			removed++
			// Remove the executor directory too once its last run is gone
			// (runs/latest, which named it, does not count).
			exec := filepath.Dir(filepath.Dir(run))
			if left, _ := filepath.Glob(filepath.Join(exec, "runs", "*")); len(left) == 0 ||
				(len(left) == 1 && filepath.Base(left[0]) == "latest") {
				os.RemoveAll(exec)
			}
		}
	}
	if removed > 0 {
		a.log.Info("garbage-collected finished sandboxes", "removed", removed, "recycled", recycled, "max_age", limit.String())
	}
	return removed
}

// realDirs reports whether dir and each directory between it and root
// are directories, not links to one.
func realDirs(root, dir string) bool {
	for ; len(dir) > len(root); dir = filepath.Dir(dir) {
		if info, err := os.Lstat(dir); err != nil || !info.IsDir() {
			return false
		}
	}
	return true
}

// activeExecutorDirs lists the run and checkpoint directories of live
// executors, which the collector must leave alone.
func (a *Agent) activeExecutorDirs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.executors {
		out = append(out, e.sandbox, e.meta)
	}
	return out
}
