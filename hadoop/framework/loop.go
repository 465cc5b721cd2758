package framework

import (
	"context"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Events from the SDK's handler to the loop.
type (
	evSubscribed   struct{ id string }
	evOffers       []mesos.Offer
	evUpdate       mesos.TaskStatus
	evFailure      struct{ f *schedpb.Event_Failure }
	evDisconnected struct{}
	// evCall runs fn on the loop (API and umbilical requests); fn answers
	// through its own channel.
	evCall func(ctx context.Context)
)

// handler turns the SDK's events into loop events. It never blocks for
// long: the channel is deep, and the loop drains it.
type handler struct{ events chan<- any }

var _ scheduler.Handler = handler{}

func (h handler) Subscribed(_ context.Context, s *schedpb.Event_Subscribed) {
	h.events <- evSubscribed{id: s.FrameworkID.Value}
}
func (h handler) Offers(_ context.Context, os []mesos.Offer)      { h.events <- evOffers(os) }
func (h handler) Rescind(context.Context, mesos.OfferID)          {}
func (h handler) Update(_ context.Context, st mesos.TaskStatus)   { h.events <- evUpdate(st) }
func (h handler) Message(context.Context, *schedpb.Event_Message) {}
func (h handler) Failure(_ context.Context, f *schedpb.Event_Failure) {
	h.events <- evFailure{f: f}
}
func (h handler) Error(context.Context, string)       {}
func (h handler) Heartbeat(context.Context)           {}
func (h handler) Disconnected(context.Context, error) { h.events <- evDisconnected{} }

// call runs fn on the loop and waits for it, or for ctx.
func (f *Framework) call(ctx context.Context, fn func(ctx context.Context)) error {
	done := make(chan struct{})
	select {
	case f.events <- evCall(func(lctx context.Context) { fn(lctx); close(done) }):
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop owns the framework's state until ctx ends.
func (f *Framework) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var idle <-chan time.Time
	if f.sizing.IdleInterval > 0 && f.sizing.IdleChecks > 0 {
		t := time.NewTicker(f.sizing.IdleInterval)
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-ctx.Done():
			f.closeWaiters()
			return
		case ev := <-f.events:
			f.handle(ctx, ev)
		case <-tick.C:
			f.tick(ctx)
		case <-idle:
			f.idleCheck(ctx)
		}
		f.settle(ctx)
	}
}

func (f *Framework) handle(ctx context.Context, ev any) {
	switch ev.(type) {
	case evSubscribed, evUpdate, evFailure, evDisconnected:
		// A task's state or progress, a tracker, the connection: what
		// the page shows (an API call bumps where it changes something).
		f.changes.Bump()
	}
	switch ev := ev.(type) {
	case evSubscribed:
		f.subscribed(ctx, ev.id)
	case evOffers:
		f.offers(ctx, ev)
	case evUpdate:
		f.update(ctx, mesos.TaskStatus(ev))
	case evFailure:
		f.failure(ctx, ev.f)
	case evDisconnected:
		f.recon = nil
	case evCall:
		ev(ctx)
	}
}

// subscribed records the framework ID and reconciles: explicitly the
// tasks this scheduler launched, implicitly (every task the master knows)
// to find attempts an earlier incarnation left behind.
func (f *Framework) subscribed(ctx context.Context, id string) {
	if id != f.state.FrameworkID {
		f.state.FrameworkID = id
		if err := f.store.SaveFramework(f.state); err != nil {
			f.log.Error("save framework ID", "err", err)
		}
	}
	f.log.Info("subscribed", "framework_id", id)
	f.suppressed = true // whatever was suppressed before: revive says no more
	if len(f.activeRunning()) == 0 {
		f.suppress(ctx)
	} else {
		f.revive(ctx)
	}
	tasks := map[string]string{}
	for id, t := range f.tasks {
		tasks[id] = t.agentID
	}
	f.recon = scheduler.NewReconciler(tasks, time.Now(), scheduler.DefaultBackoff)
	go f.driver.Reconcile(ctx, nil)
	f.reconcile(ctx)
}

func (f *Framework) reconcile(ctx context.Context) {
	if f.recon == nil {
		return
	}
	due, _ := f.recon.Due(time.Now())
	if len(due) > 0 {
		go f.driver.Reconcile(ctx, due)
	}
	if f.recon.Done() {
		f.recon = nil
	}
}

// tick runs the time-based rules: task timeouts and reconciliation.
func (f *Framework) tick(ctx context.Context) {
	now := time.Now()
	for _, j := range f.activeRunning() {
		f.apply(ctx, j, j.core.Tick(now))
	}
	f.reconcile(ctx)
}

// settle follows up every event: reduces waiting for map outputs hear of
// new ones, finished jobs are recorded, and offers are suppressed when no
// job needs them.
func (f *Framework) settle(ctx context.Context) {
	for _, j := range append([]*jobRun(nil), f.active...) {
		j.wake()
		if j.core.State().Done() {
			f.finish(ctx, j)
		}
	}
	if len(f.active) == 0 && !f.suppressed && f.driver.Subscribed() {
		f.suppress(ctx)
	}
}

// suppress stops offers while no job needs them; revive asks for them
// again. Both are quick calls made in order from the loop.
func (f *Framework) suppress(ctx context.Context) {
	if err := f.driver.Suppress(ctx); err != nil {
		f.log.Debug("suppress offers", "err", err)
		return
	}
	f.suppressed = true
}

func (f *Framework) revive(ctx context.Context) {
	if !f.suppressed {
		return
	}
	if err := f.driver.Revive(ctx); err != nil {
		f.log.Debug("revive offers", "err", err)
		return
	}
	f.suppressed = false
}
