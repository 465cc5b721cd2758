package framework

import (
	"fmt"
	"math"
	"time"

	"github.com/agora-cluster/agora/hadoop/conf"
)

// Scheduler properties under mesos/hadoop's names.
const (
	KeySlotCPUs        = "mapred.mesos.slot.cpus"
	KeySlotMem         = "mapred.mesos.slot.mem"
	KeySlotDisk        = "mapred.mesos.slot.disk"
	KeyTrackerCPUs     = "mapred.mesos.tasktracker.cpus"
	KeyTrackerMem      = "mapred.mesos.tasktracker.mem"
	KeyTrackerDisk     = "mapred.mesos.tasktracker.disk"
	KeyMapMax          = "mapred.tasktracker.map.tasks.maximum"
	KeyReduceMax       = "mapred.tasktracker.reduce.tasks.maximum"
	KeyMinMapSlots     = "mapred.mesos.total.map.slots.minimum"
	KeyMinReduceSlots  = "mapred.mesos.total.reduce.slots.minimum"
	KeyFixedPolicy     = "mapred.mesos.scheduler.policy.fixed"
	KeyIdleInterval    = "mapred.mesos.tracker.idle.interval" // seconds
	KeyIdleChecks      = "mapred.mesos.tracker.idle.checks"
	KeyMinExecutors    = "agora.hadoop.executors.minimum"
	KeyMaxExecutors    = "agora.hadoop.executors.maximum"
	KeyRole            = "mapred.mesos.role"
	KeyCheckpoint      = "mapred.mesos.checkpoint"
	KeyFailoverTimeout = "agora.hadoop.failover.timeout" // seconds
)

// Sizing is how TaskTracker executors are sized from offers, after
// mesos/hadoop's ResourcePolicy: every tracker holds TrackerCPUs/Mem/Disk
// itself, and each map or reduce slot SlotCPUs/Mem/Disk (taken from the
// offer by each attempt, which is a Mesos task of its own).
type Sizing struct {
	SlotCPUs, SlotMem, SlotDisk          float64
	TrackerCPUs, TrackerMem, TrackerDisk float64
	// MapMax and ReduceMax bound one tracker's slots.
	MapMax, ReduceMax int
	// MinMapSlots and MinReduceSlots are the "hot" slots kept available:
	// trackers holding them are not shut down when idle.
	MinMapSlots, MinReduceSlots int
	// Fixed selects ResourcePolicyFixed (every tracker gets MapMax and
	// ReduceMax slots, or is not launched) over ResourcePolicyVariable.
	Fixed bool
	// MinExecutors trackers are kept even when idle; at most MaxExecutors
	// run at once (0: no limit).
	MinExecutors, MaxExecutors int
	// A tracker idle for IdleChecks checks IdleInterval apart is shut down;
	// either 0 disables this.
	IdleInterval time.Duration
	IdleChecks   int
}

// DefaultSizing is the sizing without properties. The per-slot and
// per-tracker shares are smaller than mesos/hadoop's (1 CPU and 1024 MB per
// slot, the same per TaskTracker) because nothing here runs a JVM: a
// TaskTracker is a small Go process and a slot's processes are the user's
// mapper or reducer. The agent holds a tracker's container to the sum of
// its own share and its running attempts' (cpus as a CFS quota), so a
// one-CPU agent (a laptop split into two dev agents) gets a tracker with
// two slots that together use the whole CPU. Set the mapred.mesos.*
// properties to reserve more.
func DefaultSizing() Sizing {
	return Sizing{
		SlotCPUs: 0.4, SlotMem: 256, SlotDisk: 0,
		TrackerCPUs: 0.2, TrackerMem: 128, TrackerDisk: 0,
		MapMax: 2, ReduceMax: 2,
		IdleInterval: 5 * time.Second, IdleChecks: 5,
	}
}

// SizingFrom reads the sizing properties from c over the defaults.
func SizingFrom(c conf.Conf) (Sizing, error) {
	s := DefaultSizing()
	var errs []error
	f := func(key string, dst *float64) {
		v, err := c.Float(key, *dst)
		if err == nil && (v < 0 || math.IsNaN(v) || math.IsInf(v, 0)) {
			err = fmt.Errorf("property %s=%v: must be a non-negative number", key, v)
		}
		errs = append(errs, err)
		*dst = v
	}
	i := func(key string, dst *int) {
		v, err := c.Int(key, int64(*dst))
		if err == nil && v < 0 {
			err = fmt.Errorf("property %s=%d: must not be negative", key, v)
		}
		errs = append(errs, err)
		*dst = int(v)
	}
	f(KeySlotCPUs, &s.SlotCPUs)
	f(KeySlotMem, &s.SlotMem)
	f(KeySlotDisk, &s.SlotDisk)
	f(KeyTrackerCPUs, &s.TrackerCPUs)
	f(KeyTrackerMem, &s.TrackerMem)
	f(KeyTrackerDisk, &s.TrackerDisk)
	i(KeyMapMax, &s.MapMax)
	i(KeyReduceMax, &s.ReduceMax)
	i(KeyMinMapSlots, &s.MinMapSlots)
	i(KeyMinReduceSlots, &s.MinReduceSlots)
	i(KeyMinExecutors, &s.MinExecutors)
	i(KeyMaxExecutors, &s.MaxExecutors)
	i(KeyIdleChecks, &s.IdleChecks)
	secs := s.IdleInterval.Seconds()
	f(KeyIdleInterval, &secs)
	s.IdleInterval = time.Duration(secs * float64(time.Second))
	fixed, err := c.Bool(KeyFixedPolicy, false)
	errs = append(errs, err)
	s.Fixed = fixed
	for _, err := range errs {
		if err != nil {
			return Sizing{}, err
		}
	}
	if s.SlotCPUs <= 0 && s.SlotMem <= 0 {
		return Sizing{}, fmt.Errorf("properties %s and %s: a slot must take some cpus or memory", KeySlotCPUs, KeySlotMem)
	}
	if s.MapMax+s.ReduceMax == 0 {
		return Sizing{}, fmt.Errorf("properties %s and %s: a tracker needs at least one slot", KeyMapMax, KeyReduceMax)
	}
	return s, nil
}

// Needed is mesos/hadoop's slot demand: the pending maps and reduces (or
// the minimum hot slots, whichever is more) less the slots that are free or
// not yet up.
func (s Sizing) Needed(pendingMaps, pendingReduces, idleMaps, idleReduces int) (maps, reduces int) {
	maps = max(s.MinMapSlots-idleMaps, pendingMaps-idleMaps)
	reduces = max(s.MinReduceSlots-idleReduces, pendingReduces-idleReduces)
	return max(maps, 0), max(reduces, 0)
}

// Slots sizes a tracker from what an offer has left for it (cpus, mem,
// disk; the tracker's own share already taken when it is new) and the
// slots still needed. mapCap and reduceCap bound the answer (MapMax and
// ReduceMax for a new tracker, what is left of them when an existing one
// grows). This is ResourcePolicyVariable (or ResourcePolicyFixed):
//
//	slots = min(mapCap+reduceCap, cpus/slotCpus, mem/slotMem, disk/slotDisk)
//	if everything needed fits: exactly that
//	else split slots by the needed ratio, each side clamped to [0.25, 0.75]
//	when both are needed, at least one map slot.
func (s Sizing) Slots(cpus, mem, disk float64, neededMaps, neededReduces, mapCap, reduceCap int) (maps, reduces int) {
	fit := math.MaxInt
	for _, r := range [][2]float64{{cpus, s.SlotCPUs}, {mem, s.SlotMem}, {disk, s.SlotDisk}} {
		if r[1] > 0 {
			fit = min(fit, int(math.Floor(r[0]/r[1]+1e-9)))
		}
	}
	if s.Fixed {
		if fit >= mapCap+reduceCap && mapCap+reduceCap >= 1 {
			return mapCap, reduceCap
		}
		return 0, 0
	}
	slots := min(mapCap+reduceCap, fit)
	if slots < 1 || neededMaps+neededReduces <= 0 {
		return 0, 0
	}
	if slots >= neededMaps+neededReduces && neededMaps <= mapCap && neededReduces <= reduceCap {
		return neededMaps, neededReduces
	}
	total := float64(neededMaps + neededReduces)
	mapFactor, reduceFactor := float64(neededMaps)/total, float64(neededReduces)/total
	if neededMaps > 0 && neededReduces > 0 {
		mapFactor = min(max(mapFactor, 0.25), 0.75)
		reduceFactor = min(max(reduceFactor, 0.25), 0.75)
	}
	_ = reduceFactor // the reduces get what the maps leave, as upstream
	maps = min(max(int(math.Round(mapFactor*float64(slots))), 1), mapCap, neededMaps)
	reduces = min(slots-maps, reduceCap, neededReduces)
	return max(maps, 0), max(reduces, 0)
}
