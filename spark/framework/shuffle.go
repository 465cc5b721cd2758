package framework

import (
	"fmt"
	"net"
	"os"
	"path"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
)

// The external shuffle service (spark.shuffle.service.enabled): one task
// per host that has executors of an application that asks for it,
// launched before any such executor there. One per host, not per agent:
// Spark takes a host to have one, and asks the service of one executor on
// a host for the files of every executor there (host-local reads), so
// agents that share a host share it. It serves the shuffle files an
// executor wrote after the executor is gone, so dynamic allocation can
// release idle executors without losing their map outputs. Its port comes
// from the offer and is handed to the executors on that agent as
// -Dspark.shuffle.service.port (a port setting, which an executor keeps
// over the driver's). Executors write their shuffle files into the
// service's directory (SPARK_LOCAL_DIRS, under Config.ShuffleDir): a
// task's /tmp may be private to it. The service ends when no running
// application has had executors on its host, and removes the directory
// as it ends.
const (
	shuffleClass = "org.apache.spark.deploy.ExternalShuffleService"
	shuffleCPUs  = 0.1
	shuffleMemMB = 384
	shuffleHeap  = "256m"
	// shuffleReadyWithin bounds the wait for a started service to accept
	// connections.
	shuffleReadyWithin = 2 * time.Minute
)

// ShuffleService is the external shuffle service's task on one host.
type ShuffleService struct {
	AgentID  string `json:"agentId"`
	Hostname string `json:"hostname"`
	TaskID   string `json:"taskId"`
	Port     uint64 `json:"port"`
	// Dir holds the shuffle files of the executors that use it.
	Dir   string `json:"dir"`
	State string `json:"state"`
	// Ready: it accepts connections; executors wait for it.
	Ready   bool   `json:"ready"`
	Killed  bool   `json:"killed,omitempty"`
	Message string `json:"message,omitempty"`
}

func (ss *ShuffleService) active() bool {
	e := Executor{State: ss.State}
	return e.active()
}

// ShuffleServices are the shuffle services known, by host (copies).
func (s *Scheduler) ShuffleServices() []ShuffleService {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []ShuffleService{}
	for _, id := range sortedKeys(s.shuffle) {
		out = append(out, *s.shuffle[id])
	}
	return out
}

// shuffleServiceLocked is the ready shuffle service on o's host for a's
// executors. Without one it launches one from pool (added to l) or waits
// for the one starting or ending: nil then.
func (s *Scheduler) shuffleServiceLocked(a *App, o *mesos.Offer, pool *offers.Pool, l *launch) *ShuffleService {
	ss := s.shuffle[o.Hostname]
	switch {
	case ss != nil && ss.Ready && !ss.Killed && ss.active():
		return ss
	case ss != nil && ss.active():
		a.Message = fmt.Sprintf("waiting for the shuffle service on %s", o.Hostname)
		return nil
	}
	need := offers.Need{CPUs: shuffleCPUs, Mem: shuffleMemMB, Ports: 1, Role: a.Sizing.Role}
	rs, took := pool.Take(need)
	if !took {
		a.Message = fmt.Sprintf("the shuffle service (%g cpus, %d MB, 1 port) does not fit the offer from %s: %s", shuffleCPUs, shuffleMemMB, o.Hostname, pool.Shortfall(need))
		return nil
	}
	s.shuffleSeq++
	ss = &ShuffleService{AgentID: o.AgentID.Value, Hostname: o.Hostname, Port: firstPort(rs),
		TaskID: "spark-shuffle-service-" + strconv.Itoa(s.shuffleSeq) + "-" + o.AgentID.Value,
		State:  mesos.TASK_STAGING.String()}
	ss.Dir = path.Join(s.cfg.ShuffleDir, ss.TaskID)
	s.shuffle[ss.Hostname] = ss
	l.tasks = append(l.tasks, s.shuffleTask(ss, rs, a))
	l.shuffle = append(l.shuffle, ss)
	a.Message = fmt.Sprintf("waiting for the shuffle service on %s", o.Hostname)
	s.log.Info("shuffle service launching", "agent", o.Hostname, "task", ss.TaskID, "port", ss.Port, "dir", ss.Dir, "for", a.ID)
	return nil
}

func firstPort(rs []mesos.Resource) uint64 {
	for _, r := range rs {
		if r.Name == "ports" && r.Ranges != nil && len(r.Ranges.Range) > 0 {
			return r.Ranges.Range[0].Begin
		}
	}
	return 0
}

// shuffleTask runs the Spark home's ExternalShuffleService on ss.Port, in
// a shell that makes its directory first and removes it when the service
// ends (killed or not).
func (s *Scheduler) shuffleTask(ss *ShuffleService, rs []mesos.Resource, a *App) mesos.TaskInfo {
	home := s.cfg.SparkHome
	if a.Sizing.Home != "" {
		home = a.Sizing.Home
	}
	dir := shellJoin([]string{ss.Dir})
	script := "mkdir -p " + dir + " || exit 1\n" +
		shellJoin([]string{path.Join(home, "bin", "spark-class"), shuffleClass}) + " & pid=$!\n" +
		"trap 'kill -TERM $pid 2>/dev/null' TERM INT\n" +
		"wait $pid; st=$?\n" +
		"wait $pid 2>/dev/null\n" +
		"rm -rf " + dir + "\n" +
		"exit $st\n"
	shell := true
	env := map[string]string{
		"SPARK_DAEMON_MEMORY":    shuffleHeap,
		"SPARK_DAEMON_JAVA_OPTS": "-Dspark.shuffle.service.port=" + strconv.FormatUint(ss.Port, 10),
		// The service serves files only under its own local
		// directories.
		"SPARK_LOCAL_DIRS": ss.Dir,
	}
	if j := s.javaHome(a); j != "" {
		env["JAVA_HOME"] = j
	}
	cmd := &mesos.CommandInfo{Shell: &shell, Value: &script, Environment: environment(env)}
	return mesos.TaskInfo{
		Name:      "Spark shuffle service on " + ss.Hostname,
		TaskID:    mesos.TaskID{Value: ss.TaskID},
		AgentID:   mesos.AgentID{Value: ss.AgentID},
		Resources: rs,
		Command:   cmd,
	}
}

// shuffleUpdateLocked follows a shuffle service's task; false if taskID
// is not one. A running service is probed until it accepts connections;
// one that ended is forgotten, so the next offer from its agent starts
// another.
func (s *Scheduler) shuffleUpdateLocked(st mesos.TaskStatus) bool {
	var ss *ShuffleService
	for _, x := range s.shuffle {
		if x.TaskID == st.TaskID.Value {
			ss = x
		}
	}
	if ss == nil {
		return false
	}
	was := ss.State
	ss.State, ss.Message = st.GetState().String(), statusMessage(st)
	switch {
	case st.GetState() == mesos.TASK_RUNNING && was != ss.State:
		go s.probeShuffle(ss.TaskID, net.JoinHostPort(ss.Hostname, strconv.FormatUint(ss.Port, 10)))
	case !ss.active():
		delete(s.shuffle, ss.Hostname)
		if ss.Killed {
			s.log.Info("shuffle service ended", "agent", ss.Hostname, "state", ss.State)
		} else {
			s.log.Warn("shuffle service failed", "agent", ss.Hostname, "status", ss.Message)
		}
		s.reviveLocked()
	}
	return true
}

// probeShuffle marks the service ready once its port accepts connections,
// and asks for offers for the executors that wait for it.
func (s *Scheduler) probeShuffle(taskID, addr string) {
	deadline := time.Now().Add(shuffleReadyWithin)
	for {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			s.log.Warn("the shuffle service does not accept connections", "task", taskID, "addr", addr, "err", err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.shuffle {
		if ss.TaskID == taskID && ss.active() {
			ss.Ready = true
			s.log.Info("shuffle service ready", "agent", ss.Hostname, "addr", addr)
			s.reviveLocked()
		}
	}
}

// unneededShuffleLocked are the shuffle services on hosts where no running
// application that uses one has had executors: their tasks, to kill (marked
// killed here).
func (s *Scheduler) unneededShuffleLocked() [][2]string {
	needed := map[string]bool{}
	for _, id := range s.order {
		a := s.apps[id]
		if a.State != AppRunning || !a.Sizing.ShuffleService {
			continue
		}
		for _, e := range a.executors {
			needed[e.Hostname] = true
		}
	}
	var tasks [][2]string
	for _, host := range sortedKeys(s.shuffle) {
		ss := s.shuffle[host]
		if needed[host] || ss.Killed || !ss.active() {
			continue
		}
		ss.Killed = true
		tasks = append(tasks, [2]string{ss.TaskID, ss.AgentID})
		s.log.Info("shuffle service no longer needed", "agent", ss.Hostname, "task", ss.TaskID)
	}
	return tasks
}

// environment is env as Mesos variables, sorted by name.
func environment(env map[string]string) *mesos.Environment {
	out := &mesos.Environment{}
	for _, k := range sortedKeys(env) {
		v := env[k]
		out.Variables = append(out.Variables, mesos.Environment_Variable{Name: k, Value: &v})
	}
	return out
}

// javaHome is JAVA_HOME for a's tasks: the configured one, else a's
// spark.executorEnv.JAVA_HOME, else this process's.
func (s *Scheduler) javaHome(a *App) string {
	if s.cfg.JavaHome != "" {
		return s.cfg.JavaHome
	}
	if j := a.Sizing.Env["JAVA_HOME"]; j != "" {
		return j
	}
	return os.Getenv("JAVA_HOME")
}
