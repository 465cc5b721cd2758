package chronos

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/agora-cluster/agora/frameworks/chronos/schedule"
	"github.com/agora-cluster/agora/frameworks/marathon/plan"
)

// Job is a Chronos job definition, in Chronos's JSON. A job has exactly
// one of schedule (ISO 8601, R[n]/start/period), cron (five fields, an
// agora addition) or parents (a dependent job).
type Job struct {
	Name                 string     `json:"name"`
	Description          string     `json:"description"`
	Command              string     `json:"command"`
	Arguments            []string   `json:"arguments"`
	Shell                *bool      `json:"shell,omitempty"`
	Schedule             string     `json:"schedule,omitempty"`
	Cron                 string     `json:"cron,omitempty"`
	ScheduleTimeZone     string     `json:"scheduleTimeZone,omitempty"`
	Parents              []string   `json:"parents,omitempty"`
	Epsilon              string     `json:"epsilon"`
	Retries              *int       `json:"retries,omitempty"`
	Async                bool       `json:"async"`
	Disabled             bool       `json:"disabled"`
	Concurrent           bool       `json:"concurrent"`
	CPUs                 float64    `json:"cpus"`
	Mem                  float64    `json:"mem"`
	Disk                 float64    `json:"disk"`
	EnvironmentVariables []EnvVar   `json:"environmentVariables"`
	URIs                 []string   `json:"uris"`
	Fetch                []Fetch    `json:"fetch"`
	Owner                string     `json:"owner"`
	OwnerName            string     `json:"ownerName"`
	RunAsUser            string     `json:"runAsUser"`
	Container            *Container `json:"container,omitempty"`
	Constraints          [][]string `json:"constraints,omitempty"`
	Executor             string     `json:"executor"`
}

// anyValue is a field agora reads only to refuse it when it is set.
type anyValue = json.RawMessage

// EnvVar is one of a job's environmentVariables.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Fetch is one of a job's fetch URIs.
type Fetch struct {
	URI        string `json:"uri"`
	Cache      bool   `json:"cache"`
	Extract    bool   `json:"extract"`
	Executable bool   `json:"executable"`
}

// Defaults a job gets for what it leaves out (Chronos's).
const (
	defaultCPUs    = 0.1
	defaultMem     = 128
	defaultDisk    = 256
	defaultRetries = 2
)

var nameRE = regexp.MustCompile(`^[\w.-]+$`)

// Kinds of job, by the endpoint that takes them.
const (
	kindScheduled = "iso8601"
	kindDependent = "dependency"
)

// normalize checks a posted job and fills in its defaults; now is the
// start of a schedule that leaves it empty, which is spelled out so that
// a restart does not move it. It returns the job's schedule (nil for a
// dependent job). The error names the field at fault.
func (j *Job) normalize(kind string, now time.Time, defEpsilon time.Duration) (schedule.Schedule, error) {
	switch {
	case j.Name == "":
		return nil, fmt.Errorf("name is required")
	case !nameRE.MatchString(j.Name) || strings.HasPrefix(j.Name, "."):
		return nil, fmt.Errorf("name %q may have only letters, digits, '_', '.' and '-' (and may not begin with '.')", j.Name)
	case strings.TrimSpace(j.Command) == "":
		return nil, fmt.Errorf("job %q: command is required", j.Name)
	case j.Executor != "":
		return nil, fmt.Errorf("job %q: custom executors are not supported (executor must be empty)", j.Name)
	case j.CPUs < 0 || j.Mem < 0 || j.Disk < 0:
		return nil, fmt.Errorf("job %q: cpus, mem and disk may not be negative", j.Name)
	case j.Retries != nil && *j.Retries < 0:
		return nil, fmt.Errorf("job %q: retries %d may not be negative", j.Name, *j.Retries)
	}
	if _, err := j.placement(); err != nil {
		return nil, err
	}
	if j.Container != nil {
		if err := j.Container.normalize(j.Name); err != nil {
			return nil, err
		}
	}
	if j.Shell == nil {
		j.Shell = ptr(true)
	}
	if j.Retries == nil {
		j.Retries = ptr(defaultRetries)
	}
	j.CPUs = orDefault(j.CPUs, defaultCPUs)
	j.Mem = orDefault(j.Mem, defaultMem)
	j.Disk = orDefault(j.Disk, defaultDisk)
	if _, err := schedule.ParseEpsilon(j.Epsilon, defEpsilon); err != nil {
		return nil, fmt.Errorf("job %q: %w", j.Name, err)
	}
	if j.Epsilon == "" {
		j.Epsilon = schedule.Period{Clock: defEpsilon}.String()
	}
	for _, e := range j.EnvironmentVariables {
		if e.Name == "" || strings.Contains(e.Name, "=") {
			return nil, fmt.Errorf("job %q: environment variable name %q is not valid", j.Name, e.Name)
		}
	}
	if kind == kindDependent {
		if len(j.Parents) == 0 {
			return nil, fmt.Errorf("job %q: a dependent job needs parents", j.Name)
		}
		if j.Schedule != "" || j.Cron != "" {
			return nil, fmt.Errorf("job %q: a dependent job has parents, not a schedule (post it to /v1/scheduler/iso8601)", j.Name)
		}
		return nil, nil
	}
	if len(j.Parents) > 0 {
		return nil, fmt.Errorf("job %q: a scheduled job has a schedule, not parents (post it to /v1/scheduler/dependency)", j.Name)
	}
	return j.parseSchedule(now)
}

// parseSchedule reads the job's schedule or cron, spelling out an empty
// ISO start as now.
func (j *Job) parseSchedule(now time.Time) (schedule.Schedule, error) {
	switch {
	case j.Schedule != "" && j.Cron != "":
		return nil, fmt.Errorf("job %q: give schedule or cron, not both", j.Name)
	case j.Cron != "":
		c, err := schedule.ParseCron(j.Cron, j.ScheduleTimeZone)
		if err != nil {
			return nil, fmt.Errorf("job %q: %w", j.Name, err)
		}
		return c, nil
	case j.Schedule != "":
		r, err := schedule.ParseISO(j.Schedule, j.ScheduleTimeZone, now)
		if err != nil {
			return nil, fmt.Errorf("job %q: %w", j.Name, err)
		}
		j.Schedule = r.String()
		return r, nil
	}
	return nil, fmt.Errorf("job %q: schedule (R[n]/start/period) or cron is required", j.Name)
}

// scheduleOf parses a stored job's schedule (nil for a dependent job).
func (j *Job) scheduleOf() (schedule.Schedule, error) {
	if len(j.Parents) > 0 {
		return nil, nil
	}
	return j.parseSchedule(time.Time{})
}

func (j *Job) epsilon(def time.Duration) time.Duration {
	d, err := schedule.ParseEpsilon(j.Epsilon, def)
	if err != nil {
		return def
	}
	return d
}

func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// Chronos's constraint operators. EQUALS is Marathon's IS; LIKE and
// UNLIKE are Marathon's (a regular expression that must match the whole
// value; an agent without the attribute passes only UNLIKE).
var chronosOperators = map[string]string{"EQUALS": plan.Is, "LIKE": plan.Like, "UNLIKE": plan.Unlike}

// placement parses the job's constraints, [attribute, EQUALS|LIKE|UNLIKE,
// value], "hostname" being the agent's hostname.
func (j *Job) placement() ([]plan.Constraint, error) {
	var out []plan.Constraint
	for i, c := range j.Constraints {
		if len(c) != 3 {
			return nil, fmt.Errorf("job %q: constraints[%d] %q: a constraint is [attribute, operator, value]", j.Name, i, c)
		}
		op, ok := chronosOperators[strings.ToUpper(c[1])]
		if !ok {
			return nil, fmt.Errorf("job %q: constraints[%d]: unknown operator %q (EQUALS, LIKE or UNLIKE)", j.Name, i, c[1])
		}
		k, err := plan.ParseConstraint([]string{c[0], op, c[2]})
		if err != nil {
			return nil, fmt.Errorf("job %q: constraints[%d]: %v", j.Name, i, err)
		}
		out = append(out, k)
	}
	return out, nil
}
