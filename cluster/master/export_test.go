package master

import "github.com/mesos/mesos-go/api/v1/lib/master"

// SetOperatorCallHook runs f at the start of every operator query on the
// loop, until the returned function undoes it.
func SetOperatorCallHook(f func(*master.Call)) (undo func()) {
	testHookOperatorCall = f
	return func() { testHookOperatorCall = nil }
}

// CallPanics is master/call_panics, readable once Run has returned.
func (m *Master) CallPanics() uint64 { return m.counters.callPanics }
