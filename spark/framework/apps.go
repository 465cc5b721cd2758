package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// App states.
const (
	AppRunning = "RUNNING"
	AppEnded   = "ENDED"
	// AppRefused: registration refused (the message says why); nothing
	// was launched for it.
	AppRefused = "REFUSED"
)

// App is one registered application.
type App struct {
	ID, Name, DriverURL string
	Conf                map[string]string
	UIURL               string // the driver's Spark UI, if it said
	Sizing              Sizing
	State               string
	// Limit is the total of executors Spark asked for (-1: none asked
	// yet; spark.cores.max alone bounds them).
	Limit int
	// Message is the last thing that keeps executors from launching, or
	// why the application was refused.
	Message    string
	Registered time.Time
	// owner is the submission whose driver's token registered it ("" for
	// an operator's or an open API's registration).
	owner string

	executors map[string]*Executor // by executor ID
	execOrder []string
	nextID    int
	failures  map[string]int // agent ID → executors failed there
	maxFail   int            // failures that blocklist an agent
	// hostTasks are the preferred hosts of Spark's last requested total
	// (lower case) and how many pending tasks prefer each;
	// localitySince is when that set of hosts last changed.
	hostTasks     map[string]int
	localitySince time.Time
}

// Executor is one executor task.
type Executor struct {
	ID       string  `json:"id"`
	TaskID   string  `json:"taskId"`
	AgentID  string  `json:"agentId"`
	Hostname string  `json:"hostname"`
	CPUs     float64 `json:"cpus"`
	MemMB    float64 `json:"memMB"`
	// State is the task's last state (TASK_STAGING until the first
	// update).
	State    string    `json:"state"`
	Killed   bool      `json:"killed,omitempty"`
	Launched time.Time `json:"launched"`
	Message  string    `json:"message,omitempty"`
}

func (e *Executor) active() bool {
	switch e.State {
	case "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE":
		return true
	}
	return false
}

// AppStatus is what the API shows of an application.
type AppStatus struct {
	ID          string   `json:"appId"`
	Name        string   `json:"appName"`
	DriverURL   string   `json:"driverUrl"`
	State       string   `json:"state"`
	Message     string   `json:"message,omitempty"`
	Limit       int      `json:"executorLimit"`
	Cores       int      `json:"executorCores"`
	MemMB       float64  `json:"executorMemMB"`
	CoresMax    int      `json:"coresMax"`
	Blocklisted []string `json:"blocklistedAgents"`
	// Submission is the dispatcher's submission whose driver registered
	// the application with its token, if one did.
	Submission string `json:"submission,omitempty"`
	// PreferredHosts are the pending tasks' preferred hosts Spark sent
	// with its last requested total (locality).
	PreferredHosts map[string]int `json:"hostToLocalTaskCount,omitempty"`
	Executors      []Executor     `json:"executors"`
}

func (a *App) status() AppStatus {
	st := AppStatus{ID: a.ID, Name: a.Name, DriverURL: a.DriverURL, State: a.State, Message: a.Message,
		Limit: a.Limit, Cores: a.Sizing.Cores, MemMB: a.Sizing.MemMB, CoresMax: a.Sizing.CoresMax,
		Blocklisted: []string{}, Executors: []Executor{}, Submission: a.owner}
	if len(a.hostTasks) > 0 {
		st.PreferredHosts = maps.Clone(a.hostTasks)
	}
	for _, id := range a.execOrder {
		st.Executors = append(st.Executors, *a.executors[id])
	}
	for _, agent := range sortedKeys(a.failures) {
		if a.blocklisted(agent) {
			st.Blocklisted = append(st.Blocklisted, agent)
		}
	}
	return st
}

// blocklisted says whether agent has seen too many of a's executors fail
// to get another.
func (a *App) blocklisted(agent string) bool {
	return a.failures[agent] >= a.maxFail
}

// usage is the cores and number of a's active executors.
func (a *App) usage() (cores float64, n int) {
	for _, e := range a.executors {
		if e.active() {
			cores += e.CPUs
			n++
		}
	}
	return cores, n
}

// wants says whether a would launch another executor, and if so with at
// most how many cores (0: no cap).
func (a *App) wants() (bool, float64) {
	if a.State != AppRunning {
		return false, 0
	}
	cores, n := a.usage()
	if a.Limit >= 0 && n >= a.Limit {
		return false, 0
	}
	if a.Sizing.CoresMax == 0 {
		return true, 0
	}
	left := float64(a.Sizing.CoresMax) - cores
	need := 1.0
	if a.Sizing.Cores > 0 {
		need = float64(a.Sizing.Cores)
	}
	return left >= need, left
}

// register records an application (refused ones too, with their reason)
// and returns the refusal, if any.
func (s *Scheduler) register(ctx context.Context, req registerRequest) (int, error) {
	if req.AppID == "" || req.DriverURL == "" {
		return http.StatusBadRequest, fmt.Errorf("register: appId and driverUrl are required")
	}
	if !strings.HasPrefix(req.DriverURL, "spark://") {
		return http.StatusBadRequest, fmt.Errorf("register: driverUrl %q is not spark://NAME@HOST:PORT", req.DriverURL)
	}
	a := &App{ID: req.AppID, Name: req.AppName, DriverURL: req.DriverURL, Conf: req.Conf, UIURL: req.UIURL, State: AppRunning,
		Registered: s.cfg.Now().UTC(), owner: submissionOf(ctx), executors: map[string]*Executor{},
		failures: map[string]int{}, maxFail: s.cfg.MaxAgentFailures}
	sz, err := SizingFrom(req.Conf)
	if err == nil {
		err = s.checkRole(sz.Role)
	}
	if err == nil {
		err = s.checkFits(ctx, sz)
	}
	a.Sizing, a.Limit = sz, sz.Instances
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.apps[a.ID]; old != nil && old.State == AppRunning {
		return http.StatusConflict, fmt.Errorf("application %s is already registered", a.ID)
	}
	if old := s.apps[a.ID]; old != nil && a.owner != "" && old.owner != a.owner {
		return http.StatusForbidden, fmt.Errorf("application %s belongs to another submission than %s, whose token this is", a.ID, a.owner)
	}
	if _, ok := s.apps[a.ID]; !ok {
		s.order = append(s.order, a.ID)
	}
	s.apps[a.ID] = a
	s.pruneLocked()
	if err != nil {
		a.State, a.Message = AppRefused, "refused: "+err.Error()
		s.log.Warn("application refused", "app", a.ID, "err", err)
		return http.StatusBadRequest, fmt.Errorf("application %s refused: %w", a.ID, err)
	}
	s.log.Info("application registered", "app", a.ID, "name", a.Name, "driver", a.DriverURL,
		"executor_cores", sz.Cores, "executor_mem_mb", sz.MemMB, "cores_max", sz.CoresMax, "role", sz.Role)
	s.reviveLocked()
	return http.StatusOK, nil
}

func (s *Scheduler) checkRole(role string) error {
	if role == "" {
		return nil
	}
	for _, r := range s.cfg.Roles {
		if r == role {
			return nil
		}
	}
	return fmt.Errorf("spark.mesos.role=%s is not a role of this scheduler (%s; start it with --roles)", role, strings.Join(s.cfg.Roles, ","))
}

// checkFits refuses an executor no registered agent could ever hold. An
// unknown set of agents (the master not reachable) or none at all refuses
// nothing: agents may come.
func (s *Scheduler) checkFits(ctx context.Context, sz Sizing) error {
	agents, err := s.agents(ctx)
	if err != nil {
		s.log.Warn("cannot check executor size against the agents", "err", err)
		return nil
	}
	if len(agents) == 0 {
		return nil
	}
	cores := float64(max(sz.Cores, 1))
	var big AgentCapacity
	for _, ag := range agents {
		if ag.Mem >= sz.MemMB && ag.CPUs >= cores {
			return nil
		}
		if ag.Mem > big.Mem {
			big = ag
		}
	}
	return fmt.Errorf("an executor needs %g cpus and %g MB (spark.executor.memory %g MB + overhead %g MB), more than any agent has (the largest: %g cpus, %g MB mem on %s)",
		cores, sz.MemMB, sz.HeapMB, sz.MemMB-sz.HeapMB, big.CPUs, big.Mem, big.Hostname)
}

// setLimit is Spark's requested total of executors, with its pending
// tasks' preferred hosts (nil: none).
func (s *Scheduler) setLimit(id string, total int, hosts map[string]int) (int, error) {
	if total < 0 {
		return http.StatusBadRequest, fmt.Errorf("total %d: must be >= 0", total)
	}
	for h, n := range hosts {
		if strings.TrimSpace(h) == "" || n < 0 {
			return http.StatusBadRequest, fmt.Errorf("hostToLocalTaskCount: %q: %d: want a host name and a task count >= 0", h, n)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, code, err := s.runningLocked(id)
	if err != nil {
		return code, err
	}
	old := a.Limit
	a.Limit = total
	a.setLocalityLocked(hosts, s.cfg.Now())
	s.log.Info("executors requested", "app", id, "total", total, "was", old, "preferred_hosts", len(a.hostTasks))
	if want, _ := a.wants(); want {
		s.reviveLocked()
	}
	return http.StatusOK, nil
}

// killExecutors kills executors by their Spark IDs; unknown ones are
// named in the error, and nothing is killed then.
func (s *Scheduler) killExecutors(ctx context.Context, id string, execIDs []string) (int, error) {
	s.mu.Lock()
	a, code, err := s.runningLocked(id)
	if err != nil {
		s.mu.Unlock()
		return code, err
	}
	var unknown []string
	var kill []*Executor
	for _, eid := range execIDs {
		e := a.executors[eid]
		if e == nil {
			unknown = append(unknown, eid)
			continue
		}
		kill = append(kill, e)
	}
	if len(unknown) > 0 {
		s.mu.Unlock()
		return http.StatusNotFound, fmt.Errorf("application %s has no executor %s", id, strings.Join(unknown, ", "))
	}
	var tasks [][2]string
	for _, e := range kill {
		e.Killed = true
		if e.active() {
			tasks = append(tasks, [2]string{e.TaskID, e.AgentID})
		}
	}
	sd := s.sched
	s.mu.Unlock()
	s.kill(ctx, sd, tasks)
	return http.StatusOK, nil
}

// end marks an application ended and kills its executors.
func (s *Scheduler) end(ctx context.Context, id string) (int, error) {
	s.mu.Lock()
	a := s.apps[id]
	if a == nil {
		s.mu.Unlock()
		return http.StatusNotFound, fmt.Errorf("no application %s", id)
	}
	var tasks [][2]string
	if a.State == AppRunning {
		a.State = AppEnded
		for _, eid := range a.execOrder {
			e := a.executors[eid]
			e.Killed = true
			if e.active() {
				tasks = append(tasks, [2]string{e.TaskID, e.AgentID})
			}
		}
		s.log.Info("application ended", "app", id, "killing", len(tasks))
		tasks = append(tasks, s.unneededShuffleLocked()...)
	}
	sd := s.sched
	s.mu.Unlock()
	s.kill(ctx, sd, tasks)
	return http.StatusOK, nil
}

func (s *Scheduler) kill(ctx context.Context, sd interface {
	Kill(ctx context.Context, taskID, agentID string) error
}, tasks [][2]string) {
	if sd == nil {
		return
	}
	for _, t := range tasks {
		if err := sd.Kill(ctx, t[0], t[1]); err != nil {
			s.log.Warn("kill executor", "task", t[0], "err", err)
		}
	}
}

func (s *Scheduler) runningLocked(id string) (*App, int, error) {
	a := s.apps[id]
	switch {
	case a == nil:
		return nil, http.StatusNotFound, fmt.Errorf("no application %s", id)
	case a.State != AppRunning:
		return nil, http.StatusConflict, fmt.Errorf("application %s is %s", id, strings.ToLower(a.State))
	}
	return a, 0, nil
}

// maxRetainedApps bounds the ended and refused applications kept.
const maxRetainedApps = 200

// pruneLocked forgets the oldest ended applications whose executors are
// all gone beyond maxRetainedApps.
func (s *Scheduler) pruneLocked() {
	ended := 0
	for _, id := range s.order {
		if s.apps[id].State != AppRunning {
			ended++
		}
	}
	keep := s.order[:0]
	for _, id := range s.order {
		a := s.apps[id]
		if ended > maxRetainedApps && a.State != AppRunning {
			if _, n := a.usage(); n == 0 {
				delete(s.apps, id)
				ended--
				continue
			}
		}
		keep = append(keep, id)
	}
	s.order = keep
}

// AgentCapacity is an agent's total cpus and memory.
type AgentCapacity struct {
	Hostname  string
	CPUs, Mem float64
}

// masterAgents asks the master for its agents (GET /master/slaves).
func (s *Scheduler) masterAgents(ctx context.Context) ([]AgentCapacity, error) {
	base := s.masterURL()
	if base == "" {
		return nil, fmt.Errorf("no master known yet")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/master/slaves", nil)
	if err != nil {
		return nil, err
	}
	if s.cfg.Principal != "" { // a master with --authenticate_http_readonly
		req.SetBasicAuth(s.cfg.Principal, s.cfg.Secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/master/slaves: %s", base, resp.Status)
	}
	var doc struct {
		Slaves []struct {
			Hostname  string                     `json:"hostname"`
			Active    *bool                      `json:"active"`
			Resources map[string]json.RawMessage `json:"resources"`
		} `json:"slaves"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("GET %s/master/slaves: %w", base, err)
	}
	var out []AgentCapacity
	for _, sl := range doc.Slaves {
		if sl.Active != nil && !*sl.Active {
			continue
		}
		out = append(out, AgentCapacity{Hostname: sl.Hostname, CPUs: number(sl.Resources["cpus"]), Mem: number(sl.Resources["mem"])})
	}
	return out, nil
}

func number(raw json.RawMessage) float64 {
	f, _ := strconv.ParseFloat(strings.Trim(string(raw), `"`), 64)
	return f
}

// masterURL is the subscribed master's base URL, else the first master
// given as host:port.
func (s *Scheduler) masterURL() string {
	s.mu.Lock()
	sd := s.sched
	s.mu.Unlock()
	if sd != nil {
		if m := sd.Master(); m != nil {
			host := m.GetHostname()
			if a := m.GetAddress(); a != nil {
				if a.GetIP() != "" {
					host = a.GetIP()
				} else if a.GetHostname() != "" {
					host = a.GetHostname()
				}
			}
			if host != "" && m.GetPort() != 0 { // MasterInfo has no scheme: the configured master's
				return masterScheme(s.cfg.Masters[0]) + "://" + host + ":" + strconv.Itoa(int(m.GetPort()))
			}
		}
	}
	m := s.cfg.Masters[0]
	if strings.HasPrefix(m, "zk://") {
		return ""
	}
	scheme := masterScheme(m)
	m = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(m, "mesos://"), "http://"), "https://")
	return scheme + "://" + strings.TrimSuffix(m, "/")
}

// masterScheme is https for an https:// master, http otherwise.
func masterScheme(master string) string {
	if strings.HasPrefix(master, "https://") {
		return "https"
	}
	return "http"
}
