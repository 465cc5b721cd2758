package main

import (
	"flag"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
)

// gcFlags are the agent's sandbox garbage collection flags (Mesos's
// names), and --sandbox_recycling, which Mesos does not have.
type gcFlags struct {
	delay, watch mesosDuration
	headroom     float64
	recycle      bool
}

func (f *gcFlags) register(fs *flag.FlagSet) {
	f.delay = mesosDuration(7 * 24 * time.Hour)
	f.watch = mesosDuration(time.Minute)
	fs.Var(&f.delay, "gc_delay", "how long finished sandboxes are kept; less when the disk fills (see --gc_disk_headroom)")
	fs.Float64Var(&f.headroom, "gc_disk_headroom", 0.1,
		"fraction of the disk to keep free: sandboxes are kept gc_delay × max(0, 1 − headroom − disk usage)")
	fs.Var(&f.watch, "disk_watch_interval", "how often disk usage is checked and old sandboxes removed")
	fs.BoolVar(&f.recycle, "sandbox_recycling", true,
		"put the directories and output files of collected sandboxes back into the pool new launches take\n"+
			"their sandboxes from (emptied and checked), instead of removing them; only sandboxes of containers\n"+
			"with cgroups and namespaces, whose every process is known gone")
}

func (f *gcFlags) apply(cfg *agent.Config) {
	cfg.GCDelay = time.Duration(f.delay)
	cfg.GCDiskHeadroom = f.headroom
	cfg.DiskWatchInterval = time.Duration(f.watch)
	if !f.recycle {
		cfg.RecycledSandboxes = -1
	}
}
