package jobtracker

import (
	"fmt"
	"time"

	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/job"
)

// Job is the state of one MapReduce job. It is not safe for concurrent use:
// one goroutine owns it.
type Job struct {
	ID    job.ID
	cfg   Config
	state JobState
	err   string

	maps    []*Task
	reduces []*Task

	hosts        map[string]*host // every host that offered a slot
	waitingSince time.Time        // delay scheduling: since when no local map could run
	relaxed      bool             // delay passed: non-local maps allowed until a local one runs

	completions []MapCompletion
	counters    counters.Counters
	start       time.Time
	finish      time.Time
	mapsDoneAt  time.Time // when the last map finished, for reduce speculation
}

type host struct {
	failures    int
	blacklisted bool
}

// New creates a job with one map per entry of mapHosts (the hosts holding
// that split's data, possibly none) and the given number of reduces (0 for
// a map-only job).
func New(id job.ID, mapHosts [][]string, reduces int, cfg Config, now time.Time) *Job {
	j := &Job{ID: id, cfg: cfg, state: JobRunning, hosts: map[string]*host{}, counters: counters.New(), start: now}
	for i, h := range mapHosts {
		j.maps = append(j.maps, newTask(job.TaskID{Job: id, Kind: job.Map, Index: i}, h))
	}
	for i := 0; i < reduces; i++ {
		j.reduces = append(j.reduces, newTask(job.TaskID{Job: id, Kind: job.Reduce, Index: i}, nil))
	}
	return j
}

func newTask(id job.TaskID, hosts []string) *Task {
	return &Task{ID: id, State: TaskPending, Hosts: hosts, failedHosts: map[string]bool{}, fetchFailures: map[job.TaskID]bool{}}
}

// State is the job's state.
func (j *Job) State() JobState { return j.state }

// Err is why the job failed, or "".
func (j *Job) Err() string { return j.err }

// MapOnly reports whether the job has no reduces.
func (j *Job) MapOnly() bool { return len(j.reduces) == 0 }

// NumMaps and NumReduces count the tasks.
func (j *Job) NumMaps() int    { return len(j.maps) }
func (j *Job) NumReduces() int { return len(j.reduces) }

// Task returns a task, or nil.
func (j *Job) Task(id job.TaskID) *Task {
	if id.Job != j.ID {
		return nil
	}
	ts := j.maps
	if id.Kind == job.Reduce {
		ts = j.reduces
	}
	if id.Index < 0 || id.Index >= len(ts) {
		return nil
	}
	return ts[id.Index]
}

// attempt finds an attempt and its task.
func (j *Job) attempt(id job.AttemptID) (*Task, *Attempt) {
	t := j.Task(id.Task)
	if t == nil || id.N < 0 || id.N >= len(t.Attempts) {
		return nil, nil
	}
	return t, t.Attempts[id.N]
}

// Attempt returns a copy of an attempt's state.
func (j *Job) Attempt(id job.AttemptID) (Attempt, bool) {
	_, a := j.attempt(id)
	if a == nil {
		return Attempt{}, false
	}
	return *a, true
}

// Blacklisted lists the hosts this job no longer uses.
func (j *Job) Blacklisted() []string {
	var out []string
	for name, h := range j.hosts {
		if h.blacklisted {
			out = append(out, name)
		}
	}
	return out
}

// MapCompletions returns the map completion events from seq on.
func (j *Job) MapCompletions(from int) []MapCompletion {
	if from < 0 || from >= len(j.completions) {
		return nil
	}
	return append([]MapCompletion(nil), j.completions[from:]...)
}

func (j *Job) tasks(k job.Kind) []*Task {
	if k == job.Reduce {
		return j.reduces
	}
	return j.maps
}

func (j *Job) maxAttempts(k job.Kind) int {
	if k == job.Reduce {
		return j.cfg.ReduceMaxAttempts
	}
	return j.cfg.MapMaxAttempts
}

// needsCommit reports whether attempts of kind k write job output and so
// must be allowed to commit.
func (j *Job) needsCommit(k job.Kind) bool { return k == job.Reduce || j.MapOnly() }

func (t *Task) running() []*Attempt {
	var out []*Attempt
	for _, a := range t.Attempts {
		if a.State.active() {
			out = append(out, a)
		}
	}
	return out
}

// TaskCounts counts tasks by state.
type TaskCounts struct {
	Total     int `json:"total"`
	Pending   int `json:"pending"`
	Running   int `json:"running"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Killed    int `json:"killed"`
}

// Status is a snapshot of the job for clients and the UI.
type Status struct {
	ID             job.ID            `json:"id"`
	State          JobState          `json:"state"`
	Error          string            `json:"error,omitempty"`
	Maps           TaskCounts        `json:"maps"`
	Reduces        TaskCounts        `json:"reduces"`
	MapProgress    float64           `json:"map_progress"`
	ReduceProgress float64           `json:"reduce_progress"`
	Counters       counters.Counters `json:"counters"`
	Blacklisted    []string          `json:"blacklisted,omitempty"`
	Start          time.Time         `json:"start"`
	Finish         time.Time         `json:"finish,omitzero"`
}

// Status summarizes the job.
func (j *Job) Status() Status {
	s := Status{ID: j.ID, State: j.state, Error: j.err, Counters: j.Counters(), Blacklisted: j.Blacklisted(), Start: j.start, Finish: j.finish}
	s.Maps, s.MapProgress = summarize(j.maps)
	s.Reduces, s.ReduceProgress = summarize(j.reduces)
	return s
}

func summarize(ts []*Task) (TaskCounts, float64) {
	c := TaskCounts{Total: len(ts)}
	var p float64
	for _, t := range ts {
		switch t.State {
		case TaskPending:
			c.Pending++
		case TaskRunning:
			c.Running++
			best := 0.0
			for _, a := range t.running() {
				best = max(best, a.Progress)
			}
			p += best
		case TaskSucceeded:
			c.Succeeded++
			p++
		case TaskFailed:
			c.Failed++
			p++
		case TaskKilled:
			c.Killed++
		}
	}
	if len(ts) == 0 {
		return c, 1
	}
	return c, p / float64(len(ts))
}

// Counters are the job's counters: the job counters plus the counters of
// every task's successful attempt.
func (j *Job) Counters() counters.Counters {
	c := j.counters.Clone()
	for _, ts := range [][]*Task{j.maps, j.reduces} {
		for _, t := range ts {
			if t.successful != nil {
				c.Merge(t.successful.Counters)
			}
		}
	}
	return c
}

// Tasks returns copies of every task with its attempts, maps first.
func (j *Job) Tasks() []Task {
	var out []Task
	for _, ts := range [][]*Task{j.maps, j.reduces} {
		for _, t := range ts {
			c := Task{ID: t.ID, State: t.State, Hosts: t.Hosts}
			for _, a := range t.Attempts {
				ac := *a
				c.Attempts = append(c.Attempts, &ac)
			}
			out = append(out, c)
		}
	}
	return out
}

func (j *Job) String() string { return fmt.Sprintf("%s (%s)", j.ID, j.state) }

// Pending counts the maps and reduces waiting for a slot (reduces count
// even before slow start lets them run, as mesos/hadoop's demand does).
func (j *Job) Pending() (maps, reduces int) {
	for _, t := range j.maps {
		if t.State == TaskPending {
			maps++
		}
	}
	for _, t := range j.reduces {
		if t.State == TaskPending {
			reduces++
		}
	}
	return maps, reduces
}
