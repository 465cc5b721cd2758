package scheduler

import (
	"context"
	"log/slog"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Handler receives the events of a framework's subscription. The driver
// calls its methods one at a time from a single goroutine, in the order the
// master sent the events; a method that blocks holds up the events behind
// it (but not the heartbeat watchdog). Methods may make calls on the Driver.
type Handler interface {
	// Subscribed follows every successful SUBSCRIBE, the first and each
	// re-subscription after a failover. Offers made before are void, and
	// the framework should reconcile its tasks.
	Subscribed(ctx context.Context, s *scheduler.Event_Subscribed)
	// Offers hands over new offers; each must be accepted or declined.
	Offers(ctx context.Context, offers []mesos.Offer)
	// Rescind withdraws an offer that has not been answered yet.
	Rescind(ctx context.Context, offerID mesos.OfferID)
	// Update reports a task's status. Unless Config.ManualAcks is set, the
	// driver acknowledges it (when it carries a uuid) after Update returns.
	Update(ctx context.Context, status mesos.TaskStatus)
	// Message carries opaque data sent by an executor.
	Message(ctx context.Context, m *scheduler.Event_Message)
	// Failure reports a lost agent or a terminated executor.
	Failure(ctx context.Context, f *scheduler.Event_Failure)
	// Error reports the master's ERROR event; Run returns a *MasterError
	// after this method returns.
	Error(ctx context.Context, message string)
	// Heartbeat reports the master's periodic HEARTBEAT event.
	Heartbeat(ctx context.Context)
	// Disconnected reports the loss of a subscription (err says why). All
	// outstanding offers are void; the driver is re-subscribing.
	Disconnected(ctx context.Context, err error)
}

// Funcs is a Handler made of optional functions; a nil function ignores its
// event. Embed Funcs in a type to implement only some Handler methods.
type Funcs struct {
	OnSubscribed   func(ctx context.Context, s *scheduler.Event_Subscribed)
	OnOffers       func(ctx context.Context, offers []mesos.Offer)
	OnRescind      func(ctx context.Context, offerID mesos.OfferID)
	OnUpdate       func(ctx context.Context, status mesos.TaskStatus)
	OnMessage      func(ctx context.Context, m *scheduler.Event_Message)
	OnFailure      func(ctx context.Context, f *scheduler.Event_Failure)
	OnError        func(ctx context.Context, message string)
	OnHeartbeat    func(ctx context.Context)
	OnDisconnected func(ctx context.Context, err error)
}

var _ Handler = Funcs{}

// Subscribed implements Handler.
func (f Funcs) Subscribed(ctx context.Context, s *scheduler.Event_Subscribed) {
	if f.OnSubscribed != nil {
		f.OnSubscribed(ctx, s)
	}
}

// Offers implements Handler.
func (f Funcs) Offers(ctx context.Context, offers []mesos.Offer) {
	if f.OnOffers != nil {
		f.OnOffers(ctx, offers)
	}
}

// Rescind implements Handler.
func (f Funcs) Rescind(ctx context.Context, offerID mesos.OfferID) {
	if f.OnRescind != nil {
		f.OnRescind(ctx, offerID)
	}
}

// Update implements Handler.
func (f Funcs) Update(ctx context.Context, status mesos.TaskStatus) {
	if f.OnUpdate != nil {
		f.OnUpdate(ctx, status)
	}
}

// Message implements Handler.
func (f Funcs) Message(ctx context.Context, m *scheduler.Event_Message) {
	if f.OnMessage != nil {
		f.OnMessage(ctx, m)
	}
}

// Failure implements Handler.
func (f Funcs) Failure(ctx context.Context, fl *scheduler.Event_Failure) {
	if f.OnFailure != nil {
		f.OnFailure(ctx, fl)
	}
}

// Error implements Handler.
func (f Funcs) Error(ctx context.Context, message string) {
	if f.OnError != nil {
		f.OnError(ctx, message)
	}
}

// Heartbeat implements Handler.
func (f Funcs) Heartbeat(ctx context.Context) {
	if f.OnHeartbeat != nil {
		f.OnHeartbeat(ctx)
	}
}

// Disconnected implements Handler.
func (f Funcs) Disconnected(ctx context.Context, err error) {
	if f.OnDisconnected != nil {
		f.OnDisconnected(ctx, err)
	}
}

// Simple is the Handler of a framework that acts on three events: its
// subscription (by framework ID: record it and reconcile), its offers, and
// its tasks' updates. The master's ERROR is logged to log; the other
// events are ignored (a FAILURE is followed by its tasks' updates, and the
// driver re-subscribes after a disconnection).
func Simple(log *slog.Logger, subscribed func(ctx context.Context, frameworkID string),
	offers func(ctx context.Context, offers []mesos.Offer), update func(ctx context.Context, status mesos.TaskStatus)) Handler {
	return Funcs{
		OnSubscribed: func(ctx context.Context, s *scheduler.Event_Subscribed) { subscribed(ctx, s.FrameworkID.GetValue()) },
		OnOffers:     offers,
		OnUpdate:     update,
		OnError: func(_ context.Context, msg string) {
			log.Error("the master removed the framework", "message", msg)
		},
	}
}
