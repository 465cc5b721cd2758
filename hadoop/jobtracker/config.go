// Package jobtracker is the decision core of agora's MapReduce engine: the
// state of one job (its map and reduce tasks and their attempts) and the
// rules that drive it. It is pure: every method takes the current time (and
// where a choice is random, a random source), changes the job's state and
// returns decisions; it does no I/O, starts nothing and reads no clock. One
// goroutine owns a Job; the framework scheduler (on offers) and the local
// runner feed it events and carry out its decisions.
//
// The rules follow Hadoop's JobTracker: a task is retried until it has
// failed mapreduce.{map,reduce}.maxattempts times, and not on a host where
// it failed while other hosts exist; a host where the job's tasks failed
// mapreduce.job.maxtaskfailures.per.tracker times is blacklisted for the
// job; maps prefer hosts holding their split, waiting up to
// mapred.fairscheduler.locality.delay for one (delay scheduling); reduces
// start when mapreduce.job.reduce.slowstart.completedmaps of the maps are
// done; a straggler whose estimated run time is well beyond that of its
// finished peers gets a speculative attempt on another host when nothing
// else is waiting; only one attempt of a task may commit its output; a map
// whose output reduces cannot fetch is run again.
package jobtracker

import (
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
)

// Config holds the job properties the core obeys.
type Config struct {
	MapMaxAttempts       int
	ReduceMaxAttempts    int
	MapSpeculative       bool
	ReduceSpeculative    bool
	SlowStart            float64       // fraction of maps done before reduces start
	LocalityDelay        time.Duration // delay scheduling; 0 disables waiting
	SpeculativeLag       time.Duration // minimum run time before speculation
	SlowTaskThreshold    float64       // standard deviations beyond the mean run time
	SpeculativeCap       float64       // fraction of running tasks that may be speculated
	SpeculativeMinTasks  int           // ...but always at least this many
	TaskTimeout          time.Duration // no progress for this long fails an attempt; 0 disables
	MaxFailuresPerHost   int           // task failures that blacklist a host for the job
	MapFailuresPercent   int           // failed maps the job tolerates, in percent
	ReduceFailuresPct    int
	FetchFailuresToRerun int // fetch-failure reports that re-run a map (Hadoop: 3)
}

// ConfigFrom reads the Config from a job configuration, with Hadoop's
// defaults.
func ConfigFrom(c conf.Conf) (Config, error) {
	var cfg Config
	var errs []error
	geti := func(key string, def int64) int {
		n, err := c.Int(key, def)
		errs = append(errs, err)
		return int(n)
	}
	getb := func(key string, def bool) bool {
		b, err := c.Bool(key, def)
		errs = append(errs, err)
		return b
	}
	getf := func(key string, def float64) float64 {
		f, err := c.Float(key, def)
		errs = append(errs, err)
		return f
	}
	ms := func(key string, def int64) time.Duration { return time.Duration(geti(key, def)) * time.Millisecond }
	cfg.MapMaxAttempts = geti(conf.MapMaxAttempts, 4)
	cfg.ReduceMaxAttempts = geti(conf.ReduceMaxAttempts, 4)
	cfg.MapSpeculative = getb(conf.MapSpeculative, true)
	cfg.ReduceSpeculative = getb(conf.ReduceSpeculative, true)
	cfg.SlowStart = getf(conf.SlowStart, 0.05)
	cfg.LocalityDelay = ms(conf.LocalityDelay, 3000)
	cfg.SpeculativeLag = ms(conf.SpeculativeLag, 60000)
	cfg.SlowTaskThreshold = getf(conf.SlowTaskThreshold, 1)
	cfg.SpeculativeCap = getf(conf.SpeculativeCap, 0.1)
	cfg.SpeculativeMinTasks = geti(conf.SpeculativeMinTasks, 10)
	cfg.TaskTimeout = ms(conf.TaskTimeout, 600000)
	cfg.MaxFailuresPerHost = geti(conf.MaxFailuresPerHost, 3)
	cfg.MapFailuresPercent = geti(conf.MapFailuresPercent, 0)
	cfg.ReduceFailuresPct = geti(conf.ReduceFailuresPct, 0)
	cfg.FetchFailuresToRerun = 3
	for _, err := range errs {
		if err != nil {
			return Config{}, err
		}
	}
	cfg.MapMaxAttempts = max(cfg.MapMaxAttempts, 1)
	cfg.ReduceMaxAttempts = max(cfg.ReduceMaxAttempts, 1)
	return cfg, nil
}
