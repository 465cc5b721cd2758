package master

import (
	"context"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agora-cluster/agora/cluster/httplimit"
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
	// Not Mesos metrics: the HTTP server's connections and those refused
	// past --http_max_connections.
	hs := httplimit.StatsOf("master")
	s["master/http_connections"] = float64(hs.Open)
	s["master/http_connections_refused"] = float64(hs.Refused)
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
	s["master/operator_event_stream_subscribers"] = float64(len(m.operatorSubs))
	m.timers.allocation.snapshot(s, "allocator/mesos/allocation_run_ms")
	// Not a Mesos metric: from a task's launch to its TASK_RUNNING.
	m.timers.launch.snapshot(s, "master/task_launch_to_running_ms")
	for _, l := range m.labelled(totals.Total) {
		s[l.mesosName] = l.value
	}
	systemMetrics(s)
	return s
}

// labelledMetric is a per-framework or per-role metric: Mesos names it
// with the framework or role in the path; Prometheus gets a label.
type labelledMetric struct {
	mesosName string
	prom      string // the Prometheus family
	labels    prometheus.Labels
	value     float64
}

// labelled returns the per-framework and per-role metrics; it runs on
// the loop.
func (m *Master) labelled(total map[string]float64) []labelledMetric {
	var out []labelledMetric
	for _, f := range m.frameworks {
		prefix := "master/frameworks/" + url.PathEscape(f.info.Name) + "/" + f.id + "/"
		fl := func(extra ...string) prometheus.Labels {
			l := prometheus.Labels{"framework_id": f.id, "framework_name": f.info.Name}
			for i := 0; i+1 < len(extra); i += 2 {
				l[extra[i]] = extra[i+1]
			}
			return l
		}
		subscribed := 0.0
		if f.conn != nil {
			subscribed = 1
		}
		out = append(out, labelledMetric{prefix + "subscribed", "agora_master_framework_subscribed", fl(), subscribed})
		states := map[mesos.TaskState]float64{}
		for _, t := range f.tasks {
			if st := t.state(); !isTerminal(st) {
				states[st]++
			}
		}
		for _, st := range []mesos.TaskState{mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING, mesos.TASK_UNREACHABLE} {
			name := strings.ToLower(st.String())
			out = append(out, labelledMetric{prefix + "tasks/active/" + name, "agora_master_framework_tasks_active", fl("state", name), states[st]})
		}
		for _, role := range f.roles() {
			out = append(out, labelledMetric{prefix + "roles/" + role + "/suppressed", "agora_master_framework_role_suppressed", fl("role", role), b2f(f.suppressed[role])})
		}
	}
	// --rate_limits' per-principal counters: a principal is free text, so
	// it is a label (flattened into the name, "a-b" and "a_b" would be
	// one Prometheus metric twice).
	for name, v := range m.cfg.RateLimits.Metrics() {
		if p, counter, ok := principalCounter(name); ok {
			out = append(out, labelledMetric{name, "agora_framework_" + counter, prometheus.Labels{"principal": p}, v})
		}
	}
	for _, r := range m.alloc.Roles() {
		share := 0.0
		for name, v := range r.Allocated {
			if t := total[name]; t > 0 {
				share = max(share, v/t)
			}
		}
		out = append(out, labelledMetric{"allocator/mesos/roles/" + r.Role + "/shares/dominant", "agora_allocator_role_dominant_share", prometheus.Labels{"role": r.Role}, share})
		if q := r.Quota; q != nil {
			for name, g := range q.Guarantee {
				l := prometheus.Labels{"role": r.Role, "resource": name}
				base := "allocator/mesos/quota/roles/" + r.Role + "/resources/" + name + "/"
				out = append(out, labelledMetric{base + "guarantee", "agora_allocator_quota_guarantee", l, g},
					labelledMetric{base + "offered_or_allocated", "agora_allocator_quota_offered_or_allocated", l, q.Consumed[name]})
			}
		}
	}
	return out
}

// principalCounter splits frameworks/<principal>/messages_received (or
// messages_processed) into the principal and the counter's name.
func principalCounter(name string) (principal, counter string, ok bool) {
	rest, ok := strings.CutPrefix(name, "frameworks/")
	if !ok {
		return "", "", false
	}
	for _, c := range []string{"messages_received", "messages_processed"} {
		if p, ok := strings.CutSuffix(rest, "/"+c); ok {
			return p, c, true
		}
	}
	return "", "", false
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// systemMetrics adds Mesos's system/* metrics of this machine.
func systemMetrics(s map[string]float64) {
	s["system/cpus_total"] = float64(runtime.NumCPU())
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		const load = 1 << 16 // SI_LOAD_SHIFT
		s["system/load_1min"] = float64(si.Loads[0]) / load
		s["system/load_5min"] = float64(si.Loads[1]) / load
		s["system/load_15min"] = float64(si.Loads[2]) / load
		unit := float64(si.Unit)
		if unit == 0 {
			unit = 1
		}
		s["system/mem_total_bytes"] = float64(si.Totalram) * unit
		s["system/mem_free_bytes"] = float64(si.Freeram) * unit
	}
}

// timerWindow is how many recent values a timer's percentiles cover, as
// Mesos's timers keep a window of recent values.
const timerWindow = 1000

// timerBuckets are the Prometheus histogram's upper bounds, in seconds:
// 0.1 ms to about 100 s.
var timerBuckets = prometheus.ExponentialBuckets(0.0001, 4, 11)

// timer is one of Mesos's timer metrics (the last value, and count, min,
// max and percentiles over the last timerWindow values, in ms) and a
// Prometheus histogram of every value. It is used on the loop only.
type timer struct {
	last    time.Duration
	window  []time.Duration
	next    int
	count   uint64
	sum     float64  // seconds
	buckets []uint64 // per timerBuckets bound, not cumulative
}

func (t *timer) observe(d time.Duration) {
	t.last = d
	if len(t.window) < timerWindow {
		t.window = append(t.window, d)
	} else {
		t.window[t.next] = d
		t.next = (t.next + 1) % timerWindow
	}
	t.count++
	t.sum += d.Seconds()
	if t.buckets == nil {
		t.buckets = make([]uint64, len(timerBuckets))
	}
	for i, b := range timerBuckets {
		if d.Seconds() <= b {
			t.buckets[i]++
			break
		}
	}
}

// snapshot adds name (the last value) and name/count, /min, /max and
// /p50 to /p9999, in ms, once there is a value, as Mesos does.
func (t *timer) snapshot(s map[string]float64, name string) {
	if len(t.window) == 0 {
		return
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	sorted := slices.Clone(t.window)
	slices.Sort(sorted)
	s[name] = ms(t.last)
	s[name+"/count"] = float64(len(sorted))
	s[name+"/min"] = ms(sorted[0])
	s[name+"/max"] = ms(sorted[len(sorted)-1])
	for _, p := range []struct {
		suffix string
		q      float64
	}{{"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p999", 0.999}, {"p9999", 0.9999}} {
		i := int(math.Ceil(p.q*float64(len(sorted)))) - 1
		s[name+"/"+p.suffix] = ms(sorted[max(i, 0)])
	}
}

// histogram is t as a Prometheus histogram (in seconds).
func (t *timer) histogram(desc *prometheus.Desc) prometheus.Metric {
	cum := map[float64]uint64{}
	var n uint64
	for i, b := range timerBuckets {
		if t.buckets != nil {
			n += t.buckets[i]
		}
		cum[b] = n
	}
	return prometheus.MustNewConstHistogram(desc, t.count, t.sum, cum)
}

// masterTimers are the master's latency distributions.
type masterTimers struct {
	allocation timer // one allocator cycle
	launch     timer // a task's launch to its TASK_RUNNING
}

// observeLaunch records how long t took from its launch to TASK_RUNNING,
// when an update moves it there; it runs on the loop.
func (m *Master) observeLaunch(t *task, prev, latest mesos.TaskState) {
	if latest == mesos.TASK_RUNNING && prev != mesos.TASK_RUNNING && !t.launched.IsZero() {
		m.timers.launch.observe(m.now().Sub(t.launched))
	}
}

// Snapshot returns the current metrics (for tests and embedding).
func (m *Master) Snapshot(ctx context.Context) (map[string]float64, error) {
	var s map[string]float64
	err := m.do(ctx, func() { s = m.snapshot() })
	return s, err
}

var promName = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// collector exposes the snapshot to Prometheus as agora_* gauges, the
// per-framework and per-role metrics as gauges with labels, and the
// timers as histograms.
type collector struct {
	m *Master
	// warned are the Prometheus names already logged as duplicates.
	warned *sync.Map
}

var (
	allocationRunDesc = prometheus.NewDesc("agora_allocator_allocation_run_seconds", "Time of one allocator cycle (Mesos allocator/mesos/allocation_run_ms)", nil, nil)
	launchDesc        = prometheus.NewDesc("agora_master_task_launch_to_running_seconds", "Time from a task's launch to its TASK_RUNNING", nil, nil)
)

// Describe sends nothing: the metric set follows the master's state, so the
// collector is unchecked (and registering it does not need a running loop).
func (c collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var s map[string]float64
	var labelled []labelledMetric
	var hists []prometheus.Metric
	err := c.m.do(ctx, func() {
		s = c.m.snapshot()
		labelled = c.m.labelled(c.m.alloc.Totals().Total)
		hists = []prometheus.Metric{c.m.timers.allocation.histogram(allocationRunDesc), c.m.timers.launch.histogram(launchDesc)}
	})
	if err != nil {
		return
	}
	for _, l := range labelled {
		delete(s, l.mesosName) // named with a label instead
	}
	// Two Mesos names may flatten to one Prometheus name ("a-b", "a_b"),
	// and a duplicate fails the whole scrape: the first name (in order)
	// is exported, the others are skipped with a warning.
	seen := map[string]string{}
	for _, l := range labelled {
		seen[l.prom] = promTemplate(l.prom)
	}
	for _, name := range slices.Sorted(maps.Keys(s)) {
		prom := "agora_" + promName.ReplaceAllString(name, "_")
		if first, dup := seen[prom]; dup {
			if _, logged := c.warned.LoadOrStore(prom+"\x00"+name, true); !logged {
				c.m.log.Warn("metric not exported to Prometheus: its name flattens to one already exported", "metric", name, "prometheus", prom, "exported", first)
			}
			continue
		}
		seen[prom] = name
		desc := prometheus.NewDesc(prom, "Mesos metric "+name, nil, nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, s[name])
	}
	for _, l := range labelled {
		desc := prometheus.NewDesc(l.prom, "Mesos metric "+promTemplate(l.prom), nil, l.labels)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, l.value)
	}
	for _, h := range hists {
		ch <- h
	}
}

// promTemplate names the Mesos metric a labelled family stands for.
func promTemplate(family string) string {
	switch family {
	case "agora_master_framework_subscribed":
		return "master/frameworks/<name>/<id>/subscribed"
	case "agora_master_framework_tasks_active":
		return "master/frameworks/<name>/<id>/tasks/active/<state>"
	case "agora_master_framework_role_suppressed":
		return "master/frameworks/<name>/<id>/roles/<role>/suppressed"
	case "agora_framework_messages_received":
		return "frameworks/<principal>/messages_received"
	case "agora_framework_messages_processed":
		return "frameworks/<principal>/messages_processed"
	case "agora_allocator_role_dominant_share":
		return "allocator/mesos/roles/<role>/shares/dominant"
	case "agora_allocator_quota_guarantee":
		return "allocator/mesos/quota/roles/<role>/resources/<resource>/guarantee"
	case "agora_allocator_quota_offered_or_allocated":
		return "allocator/mesos/quota/roles/<role>/resources/<resource>/offered_or_allocated"
	}
	return family
}

func (m *Master) prometheusHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{m: m, warned: &sync.Map{}}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
