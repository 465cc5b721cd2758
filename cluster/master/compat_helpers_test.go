package master_test

import (
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/callrules"
	"github.com/mesos/mesos-go/api/v1/lib/extras/store"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

func callerWithFrameworkID(c calls.Caller, s store.Singleton) calls.Caller {
	return callrules.WithFrameworkID(store.GetIgnoreErrors(s)).Caller(c)
}
