package main

import (
	"flag"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
)

// gcFlags are the agent's sandbox garbage collection flags (Mesos's names).
type gcFlags struct {
	delay, watch mesosDuration
	headroom     float64
}

func (f *gcFlags) register(fs *flag.FlagSet) {
	f.delay = mesosDuration(7 * 24 * time.Hour)
	f.watch = mesosDuration(time.Minute)
	fs.Var(&f.delay, "gc_delay", "how long finished sandboxes are kept; less when the disk fills (see --gc_disk_headroom)")
	fs.Float64Var(&f.headroom, "gc_disk_headroom", 0.1,
		"fraction of the disk to keep free: sandboxes are kept gc_delay × max(0, 1 − headroom − disk usage)")
	fs.Var(&f.watch, "disk_watch_interval", "how often disk usage is checked and old sandboxes removed")
}

func (f *gcFlags) apply(cfg *agent.Config) {
	cfg.GCDelay = time.Duration(f.delay)
	cfg.GCDiskHeadroom = f.headroom
	cfg.DiskWatchInterval = time.Duration(f.watch)
}
