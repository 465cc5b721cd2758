package framework

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/spark/dispatcher"
)

// Sizing is how one application's executors are sized and placed, read
// from its spark.* settings as Spark's Mesos coarse-grained backend read
// them.
type Sizing struct {
	// Cores per executor (spark.executor.cores); 0 takes what an offer has
	// left, up to CoresMax, as Spark's Mesos backend did.
	Cores int
	// HeapMB is spark.executor.memory (default 1g); MemMB adds the
	// overhead (spark.executor.memoryOverhead, else
	// spark.mesos.executor.memoryOverhead, else max(384 MB,
	// spark.executor.memoryOverheadFactor (0.10) of the heap)).
	HeapMB, MemMB float64
	// CoresMax caps the cores of all the application's executors
	// (spark.cores.max; 0 is no cap).
	CoresMax int
	// Instances is the initial limit on executors (spark.executor.instances,
	// or the dynamic allocation's initial, min executors); -1 is none.
	Instances int
	// Role is spark.mesos.role ("" the framework's first role).
	Role string
	// Constraints is spark.mesos.constraints.
	Constraints Constraints
	// RejectFor is spark.mesos.rejectOfferDuration (default 120s): how
	// long offers this application cannot use are declined for.
	RejectFor time.Duration
	// Home is spark.mesos.executor.home; URI is spark.executor.uri (a
	// Spark archive fetched into the sandbox and run from there).
	Home, URI string
	// URIs are spark.mesos.uris, fetched into every executor's sandbox.
	URIs []string
	// JavaOpts is spark.executor.extraJavaOptions; Env the
	// spark.executorEnv.* variables.
	JavaOpts string
	Env      map[string]string
	// LocalityWait is spark.locality.wait (default 3s): how long offers
	// from hosts the application's pending tasks do not prefer are passed
	// over for it after Spark names preferred hosts.
	LocalityWait time.Duration
	// ShuffleService is spark.shuffle.service.enabled: the executors use
	// the external shuffle service of their agent, which the scheduler
	// starts before them.
	ShuffleService bool
}

// SizingFrom reads an application's settings; every malformed one is
// named in the error.
func SizingFrom(conf map[string]string) (Sizing, error) {
	s := Sizing{Instances: -1, RejectFor: 120 * time.Second, LocalityWait: 3 * time.Second, Env: map[string]string{}}
	var errs []error
	bad := func(k, why string) { errs = append(errs, fmt.Errorf("%s=%q: %s", k, conf[k], why)) }
	posInt := func(k string, dst *int) {
		v := strings.TrimSpace(conf[k])
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad(k, "not a positive whole number")
			return
		}
		*dst = n
	}
	posInt("spark.executor.cores", &s.Cores)
	posInt("spark.cores.max", &s.CoresMax)
	s.HeapMB = 1024
	if v := conf["spark.executor.memory"]; v != "" {
		mb, err := dispatcher.MemoryMB(v)
		if err != nil || mb <= 0 {
			bad("spark.executor.memory", "not a memory size (e.g. 512m, 2g)")
		} else {
			s.HeapMB = math.Ceil(mb)
		}
	}
	factor := 0.10
	if v := conf["spark.executor.memoryOverheadFactor"]; v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			bad("spark.executor.memoryOverheadFactor", "not a non-negative number")
		} else {
			factor = f
		}
	}
	overhead := math.Max(384, math.Ceil(factor*s.HeapMB))
	for _, k := range []string{"spark.mesos.executor.memoryOverhead", "spark.executor.memoryOverhead"} {
		if v := conf[k]; v != "" {
			mb, err := dispatcher.MemoryMB(v)
			if err != nil {
				bad(k, "not a memory size (e.g. 384m)")
				continue
			}
			overhead = math.Ceil(mb)
		}
	}
	s.MemMB = s.HeapMB + overhead
	dyn, _ := strconv.ParseBool(conf["spark.dynamicAllocation.enabled"])
	switch {
	case dyn:
		s.Instances = 0
		posIntOrZero(conf, "spark.dynamicAllocation.minExecutors", &s.Instances, bad)
		posIntOrZero(conf, "spark.dynamicAllocation.initialExecutors", &s.Instances, bad)
	case conf["spark.executor.instances"] != "":
		posIntOrZero(conf, "spark.executor.instances", &s.Instances, bad)
	}
	if v := strings.TrimSpace(conf["spark.shuffle.service.enabled"]); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("spark.shuffle.service.enabled", "not true or false")
		}
		s.ShuffleService = b
	}
	s.Role = strings.TrimSpace(conf["spark.mesos.role"])
	var err error
	if s.Constraints, err = ParseConstraints(conf["spark.mesos.constraints"]); err != nil {
		bad("spark.mesos.constraints", err.Error())
	}
	if v := conf["spark.mesos.rejectOfferDuration"]; v != "" {
		d, err := sparkDuration(v)
		if err != nil || d < 0 {
			bad("spark.mesos.rejectOfferDuration", "not a duration (e.g. 120s, 2m)")
		} else {
			s.RejectFor = d
		}
	}
	if v := conf["spark.locality.wait"]; v != "" {
		d, err := sparkDuration(v)
		if err != nil || d < 0 {
			bad("spark.locality.wait", "not a duration (e.g. 3s, 500ms)")
		} else {
			s.LocalityWait = d
		}
	}
	s.Home = conf["spark.mesos.executor.home"]
	s.URI = conf["spark.executor.uri"]
	for _, u := range strings.Split(conf["spark.mesos.uris"], ",") {
		if u = strings.TrimSpace(u); u != "" {
			s.URIs = append(s.URIs, u)
		}
	}
	s.JavaOpts = conf["spark.executor.extraJavaOptions"]
	for k, v := range conf {
		if name, ok := strings.CutPrefix(k, "spark.executorEnv."); ok && name != "" {
			s.Env[name] = v
		}
	}
	if s.Cores > 0 && s.CoresMax > 0 && s.Cores > s.CoresMax {
		errs = append(errs, fmt.Errorf("spark.executor.cores=%d is more than spark.cores.max=%d: no executor could be launched", s.Cores, s.CoresMax))
	}
	return s, errors.Join(errs...)
}

// posIntOrZero reads a whole number >= 0 into dst, if k is set.
func posIntOrZero(conf map[string]string, k string, dst *int, bad func(k, why string)) {
	v := strings.TrimSpace(conf[k])
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		bad(k, "not a whole number >= 0")
		return
	}
	*dst = n
}

// sparkDuration reads Spark's time strings: a number with a unit (ms, s,
// m, min, h, d), or a bare number of seconds.
func sparkDuration(v string) (time.Duration, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"min", time.Minute}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}}
	unit := time.Second
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, unit = strings.TrimSpace(n), u.unit
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(n) * unit, nil
}
