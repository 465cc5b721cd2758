package marathon

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/marathon/plan"
	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// offers packs the waiting instances into the offers, as many per offer
// as fit, and declines the rest; every offer an app could not use is
// noted in its queue entry with the reasons.
func (f *Framework) offers(ctx context.Context, offs []mesos.Offer) {
	now := time.Now()
	type launch struct {
		offer mesos.OfferID
		infos []mesos.TaskInfo
		ids   []string
	}
	var launches []launch
	var idle, unfit []mesos.OfferID
	f.mu.Lock()
	apps := f.waiting(now)
	for i := range offs {
		o := &offs[i]
		if f.stopping || len(apps) == 0 {
			idle = append(idle, o.ID)
			continue
		}
		pool := offers.NewPool(o)
		var l launch
		var matched []made
		for _, a := range apps {
			placed := f.placed(a.def.ID)
			for a.want > 0 {
				fit, no := plan.Match(&a.def, a.cons, pool, placed)
				if no != nil {
					a.stats.Declined(plan.UnusedOffer{OfferID: o.ID.Value, AgentID: o.AgentID.Value, Hostname: o.Hostname,
						Reasons: no.Reasons, Details: no.Details, Timestamp: now})
					break
				}
				t := f.newTask(a, o, fit, now)
				a.stats.Used(now)
				f.addTask(t)
				placed = append(placed, t.Agent)
				a.want--
				matched = append(matched, made{t: t, a: a, info: taskInfo(&a.def, t, o, fit)})
			}
		}
		for i, err := range f.saveTasks(matched) {
			m := matched[i]
			if err != nil {
				// Not launched: a task that is not on disk could not be
				// adopted after a restart.
				f.log.Error("save instance; not launching it", "task", m.t.ID, "err", err)
				f.removeTask(m.t)
				m.a.want++
				continue
			}
			l.infos = append(l.infos, m.info)
			l.ids = append(l.ids, m.t.ID)
		}
		if len(l.infos) == 0 {
			unfit = append(unfit, o.ID)
			continue
		}
		l.offer = o.ID
		launches = append(launches, l)
	}
	f.mu.Unlock()
	for _, l := range launches {
		f.log.Info("launching", "offer", l.offer.Value, "instances", len(l.ids))
		f.log.Debug("launching", "offer", l.offer.Value, "tasks", l.ids)
		if err := f.driver.Launch(ctx, []mesos.OfferID{l.offer}, l.infos, scheduler.RefuseFor(refuseRest)); err != nil {
			f.log.Warn("launch; the instances will be launched again", "tasks", l.ids, "err", err)
			f.forget(l.ids)
		}
	}
	if len(idle) > 0 {
		if err := f.driver.Decline(ctx, idle, refuseIdle); err != nil {
			f.log.Debug("decline offers", "err", err)
		}
	}
	if len(unfit) > 0 {
		if err := f.driver.Decline(ctx, unfit, refuseUnfit); err != nil {
			f.log.Debug("decline offers", "err", err)
		}
	}
	f.converge(ctx)
}

// made is an instance matched to an offer, to be saved and launched.
type made struct {
	t    *Task
	a    *app
	info mesos.TaskInfo
}

// saveWorkers bounds the instance files written at once: each write ends
// with an fsync, and the file system commits concurrent ones together.
const saveWorkers = 16

// saveTasks writes the instances' files, several at once, and returns
// each one's error. Call with f.mu held.
func (f *Framework) saveTasks(ms []made) []error {
	errs := make([]error, len(ms))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(saveWorkers, len(ms)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f.store.saveTask(ms[i].t)
			}
		}()
	}
	for i := range ms {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// forget drops instances whose launch the master did not take.
func (f *Framework) forget(ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if t := f.tasks[id]; t != nil {
			f.removeTask(t)
		}
		if err := f.store.removeTask(id); err != nil {
			f.log.Error("remove instance", "task", id, "err", err)
		}
	}
	f.reviveDue = true
}

// placed lists the agents of an app's instances that are to keep running,
// which its constraints count. Call with f.mu held.
func (f *Framework) placed(appID string) []plan.Agent {
	var out []plan.Agent
	for _, t := range f.tasksOf(appID) {
		if t.Goal == GoalRunning {
			out = append(out, t.Agent)
		}
	}
	return out
}

// newTask is a new instance of a on offer o. Call with f.mu held.
func (f *Framework) newTask(a *app, o *mesos.Offer, fit *plan.Fit, now time.Time) *Task {
	return &Task{ID: taskIDFor(a.def.ID), AppID: a.def.ID, AgentID: o.AgentID.Value, Host: o.Hostname,
		Ports: fit.Ports, State: mesos.TASK_STAGING.String(), StagedAt: now, Version: a.def.Version,
		ConfigVersion: a.configVersion(), Goal: GoalRunning, Agent: plan.AgentOf(o),
		HealthChecked: len(a.def.HealthChecks) > 0, confirmed: true}
}

// taskInfo is the TaskInfo of instance t of app d.
func taskInfo(d *plan.App, t *Task, o *mesos.Offer, fit *plan.Fit) mesos.TaskInfo {
	cmd := mesos.CommandInfo{Environment: &mesos.Environment{Variables: envVars(d, t)}}
	switch {
	case d.Cmd != nil:
		shell := true
		cmd.Shell, cmd.Value = &shell, d.Cmd
	case d.Image() != "":
		// As Marathon: args go to the image's entrypoint, and neither
		// cmd nor args runs the image's own command.
		shell := false
		cmd.Shell, cmd.Arguments = &shell, d.Args
	default:
		shell := false
		cmd.Shell, cmd.Value, cmd.Arguments = &shell, &d.Args[0], d.Args
	}
	if d.User != "" {
		cmd.User = &d.User
	}
	for _, u := range d.URIs {
		cmd.URIs = append(cmd.URIs, mesos.CommandInfo_URI{Value: u})
	}
	for _, fe := range d.Fetch {
		u := mesos.CommandInfo_URI{Value: fe.URI, Executable: &fe.Executable, Extract: &fe.Extract, Cache: &fe.Cache}
		if fe.DestPath != "" {
			u.OutputFile = &fe.DestPath
		}
		cmd.URIs = append(cmd.URIs, u)
	}
	info := mesos.TaskInfo{Name: taskName(d.ID), TaskID: mesos.TaskID{Value: t.ID}, AgentID: o.AgentID,
		Resources: fit.Resources, Command: &cmd, Container: d.MesosContainer(t.Ports), Discovery: discovery(d, t),
		HealthCheck: d.MesosHealthCheck(t.Ports)}
	if len(d.Labels) > 0 {
		keys := slices.Sorted(maps.Keys(d.Labels))
		var ls []mesos.Label
		for _, k := range keys {
			v := d.Labels[k]
			ls = append(ls, mesos.Label{Key: k, Value: &v})
		}
		info.Labels = &mesos.Labels{Labels: ls}
	}
	if d.TaskKillGracePeriod != nil {
		ns := int64(*d.TaskKillGracePeriod * float64(time.Second))
		info.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: ns}}
	}
	return info
}

// taskName is Marathon's task name for an app: its path reversed and
// joined with dots ("/prod/web" → "web.prod"), the name Mesos-DNS uses.
func taskName(id string) string {
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	slices.Reverse(segs)
	return strings.Join(segs, ".")
}

// discovery names the instance's ports for service discovery.
func discovery(d *plan.App, t *Task) *mesos.DiscoveryInfo {
	di := &mesos.DiscoveryInfo{Visibility: mesos.FRAMEWORK, Name: ptr(taskName(d.ID))}
	var ps []mesos.Port
	defs := d.PortDefs()
	for i, p := range t.Ports {
		port := mesos.Port{Number: uint32(p), Protocol: ptr("tcp")}
		if i < len(defs) {
			pd := defs[i]
			if pd.Name != "" {
				port.Name = ptr(pd.Name)
			}
			if pd.Protocol != "" {
				port.Protocol = ptr(pd.Protocol)
			}
		}
		ps = append(ps, port)
	}
	if len(ps) > 0 {
		di.Ports = &mesos.Ports{Ports: ps}
	}
	return di
}

func ptr[T any](v T) *T { return &v }

// envVars are the variables Marathon gives an instance, over the app's
// own env.
func envVars(d *plan.App, t *Task) []mesos.Environment_Variable {
	env := map[string]string{}
	for k, v := range d.Env {
		if s, ok := v.(string); ok {
			env[k] = s
		}
	}
	set := func(k, v string) { env[k] = v }
	var ports []string
	defs := d.PortDefs()
	for i, p := range t.Ports {
		ps := strconv.FormatUint(p, 10)
		ports = append(ports, ps)
		set("PORT"+strconv.Itoa(i), ps)
		if i < len(defs) && defs[i].Name != "" {
			set("PORT_"+envName(defs[i].Name), ps)
		}
		if i < len(defs) && defs[i].Port != 0 {
			set("PORT_"+strconv.Itoa(defs[i].Port), ps)
		}
	}
	if len(ports) > 0 {
		set("PORT", ports[0])
		set("PORTS", strings.Join(ports, ","))
	}
	set("HOST", t.Host)
	set("MARATHON_APP_ID", d.ID)
	set("MARATHON_APP_VERSION", d.Version)
	if img := d.Image(); img != "" {
		set("MARATHON_APP_DOCKER_IMAGE", img)
	}
	set("MARATHON_APP_RESOURCE_CPUS", strconv.FormatFloat(d.CPUs, 'f', -1, 64))
	set("MARATHON_APP_RESOURCE_MEM", strconv.FormatFloat(d.Mem, 'f', -1, 64))
	set("MARATHON_APP_RESOURCE_DISK", strconv.FormatFloat(d.Disk, 'f', -1, 64))
	set("MARATHON_APP_RESOURCE_GPUS", strconv.Itoa(d.GPUs))
	set("MESOS_TASK_ID", t.ID)
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(d.Labels)) {
		if n := envName(k); n != "" {
			labels = append(labels, n)
			set("MARATHON_APP_LABEL_"+n, d.Labels[k])
		}
	}
	set("MARATHON_APP_LABELS", strings.Join(labels, " "))
	out := make([]mesos.Environment_Variable, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		out = append(out, mesos.Environment_Variable{Name: k, Value: &v})
	}
	return out
}

// envName makes a name usable in a variable name: upper case, with other
// "-" and "." as "_" and other characters dropped.
func envName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case r == '-' || r == '.':
			b.WriteRune('_')
		}
	}
	return b.String()
}
