package clustertest

import (
	"fmt"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/cluster/api"
)

// Reregistration is a REGISTER call of agent id (hostname host) that runs
// tasks long tasks of one framework, each with its latest status and an
// unacknowledged update at its head: the body every agent sends to a new
// leader after a failover, shaped as a simulated agent of
// cluster/agentsim sends it. Benchmarks and codec tests use it.
func Reregistration(id, host string, tasks int) *api.AgentCall {
	port := int32(5051)
	res := func(cpus, mem float64) []mesos.Resource {
		return []mesos.Resource{
			{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: cpus}},
			{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: mem}},
		}
	}
	fid := mesos.FrameworkID{Value: "7c5a3f1e-0b9d-4d8e-9a61-2f0c4b7e8d13-0000"}
	user, name := "root", "failover-bench"
	fw := &mesos.FrameworkInfo{ID: &fid, User: user, Name: name, Roles: []string{"*"},
		Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}}}
	reg := &api.RegisterAgent{
		Info:       &mesos.AgentInfo{ID: &mesos.AgentID{Value: id}, Hostname: host, Port: &port, Resources: res(20, 10240)},
		Version:    api.Version,
		Frameworks: []*mesos.FrameworkInfo{fw},
	}
	for i := 0; i < tasks; i++ {
		tid := mesos.TaskID{Value: fmt.Sprintf("%s-task-%d", host, i)}
		running, ts := mesos.TASK_RUNNING, 1.7e9+float64(i)
		uuid := []byte(fmt.Sprintf("%016d", i))
		st := mesos.TaskStatus{TaskID: tid, State: &running, Source: mesos.SOURCE_EXECUTOR.Enum(),
			AgentID: &mesos.AgentID{Value: id}, Timestamp: &ts, UUID: uuid}
		tr := res(0.1, 5)
		for j := range tr {
			tr[j].AllocationInfo = &mesos.Resource_AllocationInfo{Role: &fw.Roles[0]}
		}
		reg.Tasks = append(reg.Tasks, &mesos.Task{Name: tid.Value, TaskID: tid, FrameworkID: fid, AgentID: mesos.AgentID{Value: id},
			State: &running, Resources: tr, Statuses: []mesos.TaskStatus{st}, StatusUpdateState: &running, StatusUpdateUUID: uuid})
	}
	return &api.AgentCall{Type: api.AgentRegister, AgentID: id, Register: reg}
}
