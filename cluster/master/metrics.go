package master

import (
	"context"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// snapshot returns the Mesos-named metrics; it runs on the loop.
func (m *Master) snapshot() map[string]float64 {
	s := map[string]float64{
		"master/elected":     1,
		"master/uptime_secs": time.Since(m.start).Seconds(),
	}
	maps.Copy(s, m.cfg.RateLimits.Metrics()) // --rate_limits (ratelimit.go)
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	var active, connected, disconnected, unreachable float64
	for _, a := range m.agents {
		if a.unreachable {
			unreachable++
			continue
		}
		active++
		connected += b(a.out != nil)
		disconnected += b(a.out == nil)
	}
	s["master/slaves_active"] = active
	s["master/slaves_connected"] = connected
	s["master/slaves_disconnected"] = disconnected
	s["master/slaves_inactive"] = 0
	s["master/slaves_unreachable"] = unreachable
	var fActive, fConnected, fDisconnected float64
	states := map[mesos.TaskState]float64{}
	for _, f := range m.frameworks {
		fActive += b(f.conn != nil)
		fConnected += b(f.conn != nil)
		fDisconnected += b(f.conn == nil)
		for _, t := range f.tasks {
			states[t.state()]++
		}
	}
	s["master/frameworks_active"] = fActive
	s["master/frameworks_connected"] = fConnected
	s["master/frameworks_disconnected"] = fDisconnected
	s["master/frameworks_inactive"] = fDisconnected
	s["master/outstanding_offers"] = float64(len(m.offers))
	for _, st := range []mesos.TaskState{mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING, mesos.TASK_UNREACHABLE} {
		s["master/tasks_"+strings.ToLower(strings.TrimPrefix(st.String(), "TASK_"))] = states[st]
	}
	for _, st := range []mesos.TaskState{mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_LOST, mesos.TASK_ERROR, mesos.TASK_DROPPED, mesos.TASK_GONE} {
		s["master/tasks_"+strings.ToLower(strings.TrimPrefix(st.String(), "TASK_"))] = float64(m.counters.terminal[st])
	}
	s["master/tasks_error"] += float64(m.counters.tasksErrored)
	totals := m.alloc.Totals()
	var used = map[string]float64{}
	for _, a := range m.agents {
		if a.unreachable {
			continue
		}
		for _, t := range a.tasks {
			if isTerminal(t.state()) {
				continue
			}
			for _, r := range t.info.Resources {
				if r.GetType() == mesos.SCALAR {
					used[r.Name] += r.GetScalar().GetValue()
				}
			}
		}
	}
	for _, name := range []string{"cpus", "mem", "disk", "gpus"} {
		total := totals.Total[name]
		s["master/"+name+"_total"] = total
		s["master/"+name+"_used"] = used[name]
		pct := 0.0
		if total > 0 {
			pct = used[name] / total
		}
		s["master/"+name+"_percent"] = pct
		s["allocator/mesos/resources/"+name+"/total"] = total
		s["allocator/mesos/resources/"+name+"/offered_or_allocated"] = totals.Allocated[name]
	}
	c := m.counters
	s["master/slave_registrations"] = float64(c.agentRegistrations)
	// Not a Mesos metric: subscribers (schedulers, operator API) whose
	// streams were cut for falling MaxSubscriberBacklog events behind.
	s["master/slow_subscribers_disconnected"] = float64(c.slowSubscribersCut)
	s["master/recovery_agent_removals"] = float64(c.recoveredAgentsUnreachable)
	s["master/registry_agents_collected"] = float64(c.registryAgentsCollected)
	// Not Mesos metrics: framework records written (subscriptions with
	// new or changed FrameworkInfo, teardowns) and completed ones
	// collected.
	s["master/registry_framework_writes"] = float64(c.frameworkRecordWrites)
	s["master/registry_frameworks_collected"] = float64(c.registryFrameworksCollected)
	// Not Mesos metrics: calls that panicked (the master stops after
	// one; see step), and the registry's batched writes.
	s["master/call_panics"] = float64(c.callPanics)
	s["master/registry_changes_pending"] = float64(c.registryPending)
	if m.registrar != nil {
		batches, changes, failed := m.registrar.Stats()
		s["master/registry_commits"] = float64(batches)
		s["master/registry_changes"] = float64(changes)
		s["master/registry_commits_failed"] = float64(failed)
	}
	s["master/slave_reregistrations"] = float64(c.agentReregistrations)
	s["master/slave_removals"] = float64(c.agentRemovals)
	s["master/valid_status_updates"] = float64(c.validStatusUpdates)
	s["master/invalid_status_updates"] = float64(c.invalidStatusUpdates)
	s["master/valid_status_update_acknowledgements"] = float64(c.validAcks)
	s["master/messages_launch_tasks"] = float64(c.tasksLaunched)
	s["master/offers_sent"] = float64(c.offersSent)
	s["master/offers_accepted"] = float64(c.offersAccepted)
	s["master/offers_declined"] = float64(c.offersDeclined)
	s["master/offers_rescinded"] = float64(c.offersRescinded)
	s["master/event_queue_dispatches"] = float64(len(m.ops))
	s["allocator/mesos/allocation_runs"] = float64(c.allocationRuns)
	s["allocator/mesos/allocation_run_ms"] = float64(c.lastAllocationNanos) / 1e6
	// Not Mesos metrics: HTTP requests authenticated and refused (401).
	maps.Copy(s, m.cfg.HTTP.Auth.Metrics("master"))
	return s
}

// Snapshot returns the current metrics (for tests and embedding).
func (m *Master) Snapshot(ctx context.Context) (map[string]float64, error) {
	var s map[string]float64
	err := m.do(ctx, func() { s = m.snapshot() })
	return s, err
}

var promName = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// collector exposes the snapshot to Prometheus as agora_* gauges.
type collector struct{ m *Master }

// Describe sends nothing: the metric set follows the master's state, so the
// collector is unchecked (and registering it does not need a running loop).
func (c collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.m.Snapshot(ctx)
	if err != nil {
		return
	}
	for name, v := range s {
		desc := prometheus.NewDesc("agora_"+promName.ReplaceAllString(name, "_"), "Mesos metric "+name, nil, nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
}

func (m *Master) prometheusHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{m}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
