package executor

import (
	"context"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// Handler receives the events of an executor's subscription. The driver
// calls its methods one at a time from a single goroutine, in the order the
// agent sent the events; a method that blocks holds up the events behind
// it, so long work (running a task) belongs in a goroutine of its own.
// Methods may make calls on the Driver.
type Handler interface {
	// Subscribed follows every successful SUBSCRIBE, the first and each
	// re-subscription.
	Subscribed(ctx context.Context, s *executor.Event_Subscribed)
	// Launch hands over a task to run. The executor must answer with
	// status updates: TASK_STARTING/TASK_RUNNING, then a terminal state.
	Launch(ctx context.Context, task mesos.TaskInfo)
	// LaunchGroup hands over a task group whose tasks run together.
	LaunchGroup(ctx context.Context, group mesos.TaskGroupInfo)
	// Kill asks for a task to be killed (policy, when set, overrides the
	// task's kill policy); a terminal update must follow.
	Kill(ctx context.Context, taskID mesos.TaskID, policy *mesos.KillPolicy)
	// Message carries opaque data from the scheduler.
	Message(ctx context.Context, data []byte)
	// Shutdown asks the executor to kill all its tasks, send their terminal
	// updates and exit; ctx ends when the agent's grace period is nearly
	// over. Run returns once Shutdown has returned.
	Shutdown(ctx context.Context)
	// Error reports the agent's ERROR event; the driver then subscribes
	// again.
	Error(ctx context.Context, message string)
}

// Funcs is a Handler made of optional functions; a nil function ignores its
// event (a nil OnShutdown just lets Run return).
type Funcs struct {
	OnSubscribed  func(ctx context.Context, s *executor.Event_Subscribed)
	OnLaunch      func(ctx context.Context, task mesos.TaskInfo)
	OnLaunchGroup func(ctx context.Context, group mesos.TaskGroupInfo)
	OnKill        func(ctx context.Context, taskID mesos.TaskID, policy *mesos.KillPolicy)
	OnMessage     func(ctx context.Context, data []byte)
	OnShutdown    func(ctx context.Context)
	OnError       func(ctx context.Context, message string)
}

var _ Handler = Funcs{}

// Subscribed implements Handler.
func (f Funcs) Subscribed(ctx context.Context, s *executor.Event_Subscribed) {
	if f.OnSubscribed != nil {
		f.OnSubscribed(ctx, s)
	}
}

// Launch implements Handler.
func (f Funcs) Launch(ctx context.Context, task mesos.TaskInfo) {
	if f.OnLaunch != nil {
		f.OnLaunch(ctx, task)
	}
}

// LaunchGroup implements Handler.
func (f Funcs) LaunchGroup(ctx context.Context, group mesos.TaskGroupInfo) {
	if f.OnLaunchGroup != nil {
		f.OnLaunchGroup(ctx, group)
	}
}

// Kill implements Handler.
func (f Funcs) Kill(ctx context.Context, taskID mesos.TaskID, policy *mesos.KillPolicy) {
	if f.OnKill != nil {
		f.OnKill(ctx, taskID, policy)
	}
}

// Message implements Handler.
func (f Funcs) Message(ctx context.Context, data []byte) {
	if f.OnMessage != nil {
		f.OnMessage(ctx, data)
	}
}

// Shutdown implements Handler.
func (f Funcs) Shutdown(ctx context.Context) {
	if f.OnShutdown != nil {
		f.OnShutdown(ctx)
	}
}

// Error implements Handler.
func (f Funcs) Error(ctx context.Context, message string) {
	if f.OnError != nil {
		f.OnError(ctx, message)
	}
}
