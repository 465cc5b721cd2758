package master

import (
	"context"
	"net/http"
	"sync"

	"github.com/agora-cluster/agora/cluster/registry"
)

// Registry writes leave the loop: a change is validated on the loop and
// submitted to the registrar, which groups the changes submitted while a
// commit is in flight into one commit; once it is durable the loop applies
// the change to memory and answers the caller. Until then the loop serves
// everything else. A refused batch refuses each change in it: memory stays
// as it was and each caller gets the error (503).
//
// A change is validated against memory that must not move under it before
// it applies, so changes to the same piece of durable state — one agent's
// record, or the policy — go through a lane: one at a time, each started
// (validated) only after the one before it is applied or refused. Changes
// to different agents share commits.

// lane serialises the registry changes to one key.
type lane struct {
	busy    bool
	waiting []func()
}

func agentLane(id string) string { return "agent/" + id }

const policyLane = "policy"

// inLane runs start now if no change to key is in flight, else once the
// ones before it are done. start validates against memory as it is then
// and either answers at once or calls commit on the same key.
func (m *Master) inLane(key string, start func()) {
	l := m.lanes[key]
	if l == nil {
		l = &lane{}
		m.lanes[key] = l
	}
	if l.busy {
		l.waiting = append(l.waiting, start)
		return
	}
	start()
	m.advanceLane(key)
}

// laneBusy reports whether a change to key is in flight or waiting.
func (m *Master) laneBusy(key string) bool {
	l := m.lanes[key]
	return l != nil && (l.busy || len(l.waiting) > 0)
}

// commit submits changes to key's lane (the caller is its current start)
// and calls done on the loop once they are durable (nil) or refused.
func (m *Master) commit(key string, changes []registry.Change, done func(error)) {
	l := m.lanes[key]
	if l == nil {
		l = &lane{}
		m.lanes[key] = l
	}
	l.busy = true
	m.counters.registryPending++
	m.registrar.Submit(changes, func(err error) {
		m.committed.post(func() {
			m.counters.registryPending--
			l.busy = false
			if err != nil {
				m.log.Error("registry write refused", "changes", len(changes), "first", changes[0].String(), "err", err)
				err = errorf(http.StatusServiceUnavailable, "the registry could not record the change: %v; nothing was changed", err)
			}
			done(err)
			m.advanceLane(key)
		})
	})
}

// commitNow writes changes and waits for them on the loop, for the rare
// changes made in the middle of a call that cannot be split (a framework's
// RESERVE inside an ACCEPT, a quota). The key's lane must be idle.
func (m *Master) commitNow(changes []registry.Change) error {
	res := make(chan error, 1)
	m.registrar.Submit(changes, func(err error) { res <- err })
	if err := <-res; err != nil {
		m.log.Error("registry write refused", "changes", len(changes), "first", changes[0].String(), "err", err)
		return errorf(http.StatusServiceUnavailable, "the registry could not record the change: %v; nothing was changed", err)
	}
	return nil
}

// advanceLane starts the changes waiting on key while none is in flight.
func (m *Master) advanceLane(key string) {
	l := m.lanes[key]
	if l == nil {
		return
	}
	for !l.busy && len(l.waiting) > 0 {
		start := l.waiting[0]
		l.waiting = l.waiting[1:]
		start()
	}
	if !l.busy && len(l.waiting) == 0 {
		delete(m.lanes, key)
	}
}

// completions carries the registrar's outcomes to the loop without ever
// blocking the registrar.
type completions struct {
	mu     sync.Mutex
	fs     []func()
	notify chan struct{}
}

func newCompletions() *completions { return &completions{notify: make(chan struct{}, 1)} }

func (c *completions) post(f func()) {
	c.mu.Lock()
	c.fs = append(c.fs, f)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *completions) take() []func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.fs
	c.fs = nil
	return fs
}

// await runs f on the loop and waits until f, or a continuation it left
// (a registry commit's), calls reply. It fails only if ctx ends or the
// master stops first.
func (m *Master) await(ctx context.Context, f func(reply func(error))) (callErr, err error) {
	res := make(chan error, 1)
	replied := false
	reply := func(err error) {
		if !replied {
			replied = true
			res <- err
		}
	}
	if err := m.do(ctx, func() { f(reply) }); err != nil {
		return nil, err
	}
	select {
	case callErr = <-res:
		return callErr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.stopped:
		return nil, errStopped
	}
}
