package marathon

import (
	"net/http"
	"time"
)

// Marathon's client libraries build their models from every field of an
// answer and refuse one they do not know (marathon-python raises on an
// unknown key), and they parse times as Marathon writes them, to the
// millisecond. So the API answers Marathon's fields alone, its times in
// Marathon's format, unless a request asks for agora's additions (a
// task's goal, agent and config version, a deployment's progress and
// deadline) with the header AgoraFieldsHeader, as agora's CLI and web UI
// do.

// AgoraFieldsHeader, set to "true" on a request, asks for agora's fields
// besides Marathon's.
const AgoraFieldsHeader = "X-Agora-Fields"

// marathonOnly says whether r gets Marathon's fields alone: unless it
// asks for agora's.
func marathonOnly(r *http.Request) bool {
	return r.Header.Get(AgoraFieldsHeader) != "true"
}

// marathonTask is a task with Marathon's fields only.
type marathonTask struct {
	ID                 string           `json:"id"`
	AppID              string           `json:"appId"`
	SlaveID            string           `json:"slaveId"`
	Host               string           `json:"host"`
	Ports              []uint64         `json:"ports"`
	State              string           `json:"state"`
	StagedAt           string           `json:"stagedAt"`
	StartedAt          *string          `json:"startedAt,omitempty"`
	Version            string           `json:"version"`
	HealthCheckResults []marathonHealth `json:"healthCheckResults,omitempty"`
}

// marathonHealth is a health result with Marathon's times.
type marathonHealth struct {
	Alive               bool    `json:"alive"`
	ConsecutiveFailures int     `json:"consecutiveFailures"`
	FirstSuccess        *string `json:"firstSuccess"`
	LastSuccess         *string `json:"lastSuccess"`
	LastFailure         *string `json:"lastFailure"`
	LastFailureCause    string  `json:"lastFailureCause,omitempty"`
	TaskID              string  `json:"taskId"`
	InstanceID          string  `json:"instanceId"`
}

func stampPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := stamp(*t)
	return &s
}

func toMarathonTask(t Task) marathonTask {
	m := marathonTask{ID: t.ID, AppID: t.AppID, SlaveID: t.AgentID, Host: t.Host, Ports: t.Ports, State: t.State,
		StagedAt: stamp(t.StagedAt), StartedAt: stampPtr(t.StartedAt), Version: t.Version}
	for _, h := range t.HealthCheckResults {
		m.HealthCheckResults = append(m.HealthCheckResults, marathonHealth{Alive: h.Alive, ConsecutiveFailures: h.ConsecutiveFailures,
			FirstSuccess: stampPtr(h.FirstSuccess), LastSuccess: stampPtr(h.LastSuccess), LastFailure: stampPtr(h.LastFailure),
			LastFailureCause: h.LastFailureCause, TaskID: h.TaskID, InstanceID: h.InstanceID})
	}
	return m
}

// tasksFor is ts as r asks for them.
func tasksFor(r *http.Request, ts []Task) any {
	if !marathonOnly(r) {
		return ts
	}
	out := make([]marathonTask, 0, len(ts))
	for _, t := range ts {
		out = append(out, toMarathonTask(t))
	}
	return out
}

// marathonApp is an app view whose tasks have Marathon's fields only,
// and its times Marathon's format.
type marathonApp struct {
	AppView
	Tasks           []marathonTask       `json:"tasks,omitempty"`
	LastTaskFailure *marathonTaskFailure `json:"lastTaskFailure,omitempty"`
}

// marathonTaskFailure is a task failure with Marathon's time.
type marathonTaskFailure struct {
	TaskFailure
	Timestamp string `json:"timestamp"`
}

// appFor is v as r asks for it.
func appFor(r *http.Request, v AppView) any {
	if !marathonOnly(r) {
		return v
	}
	m := marathonApp{AppView: v}
	if f := v.LastTaskFailure; f != nil {
		m.LastTaskFailure = &marathonTaskFailure{TaskFailure: *f, Timestamp: stamp(f.Timestamp)}
	}
	for _, t := range v.Tasks {
		m.Tasks = append(m.Tasks, toMarathonTask(t))
	}
	return m
}

// appsFor is vs as r asks for them.
func appsFor(r *http.Request, vs []AppView) any {
	if !marathonOnly(r) {
		return vs
	}
	out := make([]any, 0, len(vs))
	for _, v := range vs {
		out = append(out, appFor(r, v))
	}
	return out
}

// deploymentsFor is ds as r asks for them: without their progress,
// deadline and rollback for Marathon's clients.
func deploymentsFor(r *http.Request, ds []Deployment) []Deployment {
	if !marathonOnly(r) {
		return ds
	}
	out := make([]Deployment, 0, len(ds))
	for _, d := range ds {
		d.ProgressDeadline, d.RollbackOf = "", ""
		d.CurrentActions = withoutProgress(d.CurrentActions)
		steps := make([]Step, 0, len(d.Steps))
		for _, st := range d.Steps {
			st.Actions = withoutProgress(st.Actions)
			steps = append(steps, st)
		}
		d.Steps = steps
		out = append(out, d)
	}
	return out
}

// withoutProgress is a copy of as without their progress.
func withoutProgress(as []Action) []Action {
	out := make([]Action, 0, len(as))
	for _, a := range as {
		a.Progress = nil
		out = append(out, a)
	}
	return out
}
