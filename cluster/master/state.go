package master

import (
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// framework is a subscribed (or disconnected, failing over) framework.
type framework struct {
	id   string
	info mesos.FrameworkInfo

	multiRole, partitionAware, killingState bool

	conn *schedConn // nil while disconnected

	tasks     map[string]*task // active (not yet acknowledged terminal)
	completed []*task          // bounded history
	offers    map[string]*offer

	registeredTime   time.Time
	reregisteredTime time.Time
	unregisteredTime time.Time
	// failoverDeadline is when a disconnected framework is removed.
	failoverDeadline time.Time
	removed          bool
	suppressed       map[string]bool
	// recovered: known from the registry or an agent's report, and not
	// re-subscribed to this master yet.
	recovered bool
}

// roles returns the framework's roles (MULTI_ROLE roles, or its single role).
func (f *framework) roles() []string {
	if f.multiRole {
		if len(f.info.Roles) == 0 {
			return []string{"*"}
		}
		return f.info.Roles
	}
	if r := f.info.GetRole(); r != "" {
		return []string{r}
	}
	return []string{"*"}
}

func (f *framework) connected() bool { return f.conn != nil }

// schedConn is one SUBSCRIBE stream.
type schedConn struct {
	streamID string
	codec    api.Codec
	out      *outbox
	// fw is the framework the stream serves, once SUBSCRIBED went out;
	// abandoned is set when the subscriber left before that (both are
	// the loop's).
	fw        *framework
	abandoned bool
}

// agent is a registered (or unreachable) agent.
type agent struct {
	id       string
	info     mesos.AgentInfo
	pid      string
	version  string
	warnings []string

	out       *outbox // nil while disconnected
	connGen   uint64
	tasks     map[string]*task // key: frameworkID + "/" + taskID
	offers    map[string]*offer
	executors map[string]*mesos.ExecutorInfo // key: frameworkID/executorID

	registeredTime   time.Time
	reregisteredTime time.Time
	unreachable      bool
	unreachableTime  time.Time
	// Maintenance: deactivated agents get no offers; a draining agent has
	// its tasks killed and is drained once none is left.
	deactivated, draining, drained, drainMarkGone bool
	// removing: its removal (drained, mark gone) is in flight.
	removing bool
	// converting: an operator's reservation or volume change is in
	// flight; the agent is kept out of allocation until it is durable.
	converting  bool
	lastPongSeq uint64
	missedPings int
	// principal is the one the agent registered as (--authenticate_agents;
	// "" without): its later calls and re-registrations must come from it
	// (authz.go).
	principal string
}

func (a *agent) connected() bool { return a.out != nil }

// task is a launched task; info is what state endpoints report.
type task struct {
	info mesos.Task
	role string
	// unacked is set while the framework owes an acknowledgement for the
	// update in info.StatusUpdateUUID (the head of the agent's stream for
	// the task): the agent keeps retrying it until then.
	unacked bool
	// heard is set once a copy of that update has come from the agent
	// since it last registered. Until then the copy every agent sends of
	// its pending updates once registered is still to come, and a
	// framework that re-subscribes meanwhile gets that one: asking the
	// agent for another as well would deliver the update twice
	// (resendUnacknowledged).
	heard    bool
	launched time.Time
}

func (t *task) state() mesos.TaskState { return t.info.GetState() }

func taskKey(frameworkID, taskID string) string { return frameworkID + "/" + taskID }

// offer is an outstanding offer.
type offer struct {
	id        string
	fw        *framework
	agent     *agent
	role      string
	resources mesos.Resources // with allocation_info
	created   time.Time
	// unavailability is set when the agent is scheduled for maintenance.
	unavailability *mesos.Unavailability
}

// counters are cumulative metrics.
type counters struct {
	agentRegistrations, agentReregistrations, agentRemovals     uint64
	recoveredAgentsUnreachable, registryAgentsCollected         uint64
	frameworkRecordWrites, registryFrameworksCollected          uint64
	validStatusUpdates, invalidStatusUpdates, validAcks         uint64
	offersSent, offersAccepted, offersDeclined, offersRescinded uint64
	tasksLaunched, tasksErrored                                 uint64
	allocationRuns                                              uint64
	allocationNanos                                             uint64
	lastAllocationNanos                                         uint64
	slowSubscribersCut                                          uint64
	callPanics                                                  uint64
	registryPending                                             int64
	terminal                                                    map[mesos.TaskState]uint64
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

func timeSecs(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
