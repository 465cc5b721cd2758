package registry

import (
	"errors"
	"sync"
	"sync/atomic"
)

// ErrInjected is the error a Faulty registry's refused writes return.
var ErrInjected = errors.New("registry write failed (injected fault)")

// Faulty is a Registry whose writes fail on command, for tests that a
// change the registry refuses is neither acted on nor acknowledged. Reads
// always go through.
type Faulty struct {
	Registry
	failWrites atomic.Bool
	refused    atomic.Int64
	// gate, when set, holds every write until it is closed.
	gate atomic.Pointer[chan struct{}]
}

// NewFaulty wraps r (a new Memory if nil).
func NewFaulty(r Registry) *Faulty {
	if r == nil {
		r = NewMemory()
	}
	return &Faulty{Registry: r}
}

// FailWrites makes every write fail (true) or go through (false).
func (f *Faulty) FailWrites(fail bool) { f.failWrites.Store(fail) }

// Refused counts the writes refused so far.
func (f *Faulty) Refused() int64 { return f.refused.Load() }

// HoldWrites makes writes wait (a slow disk) until release is called.
func (f *Faulty) HoldWrites() (release func()) {
	ch := make(chan struct{})
	f.gate.Store(&ch)
	var once sync.Once
	return func() {
		once.Do(func() {
			f.gate.Store(nil)
			close(ch)
		})
	}
}

func (f *Faulty) refuse() bool {
	if g := f.gate.Load(); g != nil {
		<-*g
	}
	if f.failWrites.Load() {
		f.refused.Add(1)
		return true
	}
	return false
}

func (f *Faulty) PutAgent(rec AgentRecord) error {
	if f.refuse() {
		return ErrInjected
	}
	return f.Registry.PutAgent(rec)
}

func (f *Faulty) DeleteAgent(id string) error {
	if f.refuse() {
		return ErrInjected
	}
	return f.Registry.DeleteAgent(id)
}

func (f *Faulty) PutPolicy(p Policy) error {
	if f.refuse() {
		return ErrInjected
	}
	return f.Registry.PutPolicy(p)
}

func (f *Faulty) Apply(changes []Change) error {
	if f.refuse() {
		return ErrInjected
	}
	return f.Registry.Apply(changes)
}
