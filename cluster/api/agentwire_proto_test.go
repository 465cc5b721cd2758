package api_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

// sampleCalls has every agent call type, with every field set.
func sampleCalls() []*api.AgentCall {
	staging := mesos.TASK_STARTING // zero: present all the same
	running := mesos.TASK_RUNNING
	reg := clustertest.Reregistration("S-7", "sim-7", 3)
	reg.Register.Warnings = []string{"isolation disabled: not running as root", ""}
	reg.Register.Executors = []*mesos.ExecutorInfo{{ExecutorID: mesos.ExecutorID{Value: "e1"},
		FrameworkID: &mesos.FrameworkID{Value: "F1"}, Command: &mesos.CommandInfo{Value: proto("sleep 1")}}}
	st := reg.Register.Tasks[0].Statuses[0]
	return []*api.AgentCall{
		reg,
		clustertest.Reregistration("", "fresh", 0),
		{Type: api.AgentStatusUpdate, AgentID: "S-7", Updates: []*api.StatusUpdate{
			{FrameworkID: "F1", Status: &st, LatestState: &staging},
			{FrameworkID: "F1", Status: &st, LatestState: &running},
			{FrameworkID: "F2", Status: &st},
		}},
		{Type: api.AgentPong, AgentID: "S-7", Pong: &api.Pong{Seq: 1 << 40}},
		{Type: api.AgentPong, AgentID: "S-7", Pong: &api.Pong{}},
		{Type: api.AgentExecutorMsg, AgentID: "S-7", Message: &api.ExecutorMessage{FrameworkID: "F1", ExecutorID: "e1", Data: []byte{0, 1, 255}}},
		{Type: api.AgentExecutorExited, AgentID: "S-7", ExecutorExited: &api.ExecutorExited{FrameworkID: "F1", ExecutorID: "e1", Status: -9}},
		{Type: "SOMETHING_NEW"},
	}
}

func proto(s string) *string { return &s }

// sampleEvents has every agent event type, with every field set.
func sampleEvents() []*api.AgentEvent {
	fw := clustertest.Reregistration("S-7", "sim-7", 1).Register.Frameworks[0]
	ti := &mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: "t1"}, AgentID: mesos.AgentID{Value: "S-7"},
		Command: &mesos.CommandInfo{Value: proto("true")}}
	ex := &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "default"}, FrameworkID: fw.ID, Type: mesos.ExecutorInfo_DEFAULT}
	grace := int64(3e9)
	return []*api.AgentEvent{
		{Type: api.AgentRegistered, Registered: &api.AgentRegisteredInfo{AgentID: "S-7", PingIntervalNanos: 15e9, MaxPingTimeouts: 5, MasterID: "M1"}},
		{Type: api.AgentRunTask, RunTask: &api.RunTask{Framework: fw, Task: ti}},
		{Type: api.AgentRunTask, RunTask: &api.RunTask{Framework: fw, Group: &mesos.TaskGroupInfo{Tasks: []mesos.TaskInfo{*ti, *ti}}, Executor: ex}},
		{Type: api.AgentKillTask, KillTask: &api.KillTask{FrameworkID: "F1", TaskID: "t1", KillPolicy: &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: grace}}}},
		{Type: api.AgentAcknowledge, Acknowledge: &api.Acknowledge{FrameworkID: "F1", TaskID: "t1", UUID: []byte("0123456789abcdef")}},
		{Type: api.AgentShutdownFramework, ShutdownFramework: &api.ShutdownFramework{FrameworkID: "F1"}},
		{Type: api.AgentShutdownExecutor, ShutdownExecutor: &api.ShutdownExecutor{FrameworkID: "F1", ExecutorID: "e1"}},
		{Type: api.AgentFrameworkMessage, FrameworkMessage: &api.FrameworkMessage{FrameworkID: "F1", ExecutorID: "e1", Data: []byte("hi")}},
		{Type: api.AgentPing, Ping: &api.Ping{Seq: 42}},
		{Type: api.AgentReconcileTasks, ReconcileTasks: &api.ReconcileTasks{FrameworkID: "F1", TaskIDs: []string{"t1", "t2"}}},
		{Type: api.AgentReconcileTasks, ReconcileTasks: &api.ReconcileTasks{FrameworkID: "F1"}},
	}
}

// sameJSON fails unless a and b have the same JSON form: the form the
// protocol had before protobuf, so nothing is lost in the new one.
func sameJSON(t *testing.T, what string, a, b any) {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ja, jb) {
		t.Fatalf("%s changed in a protobuf round trip:\n sent %s\n  got %s", what, ja, jb)
	}
}

func TestAgentCallProtobufRoundTrip(t *testing.T) {
	for _, c := range sampleCalls() {
		b, err := api.Protobuf.MarshalAgent(c)
		if err != nil {
			t.Fatalf("%s: %v", c.Type, err)
		}
		var got api.AgentCall
		if err := api.Protobuf.UnmarshalAgent(b, &got); err != nil {
			t.Fatalf("%s: %v", c.Type, err)
		}
		sameJSON(t, string(c.Type), c, &got)
	}
}

func TestAgentEventProtobufRoundTrip(t *testing.T) {
	for _, ev := range sampleEvents() {
		b, err := api.Protobuf.MarshalAgent(ev)
		if err != nil {
			t.Fatalf("%s: %v", ev.Type, err)
		}
		var got api.AgentEvent
		if err := api.Protobuf.UnmarshalAgent(b, &got); err != nil {
			t.Fatalf("%s: %v", ev.Type, err)
		}
		sameJSON(t, string(ev.Type), ev, &got)
	}
}

// JSON stays the protocol's other codec, unchanged.
func TestAgentCallJSONStillDecodes(t *testing.T) {
	c := sampleCalls()[0]
	b, err := api.JSON.MarshalAgent(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"type":"REGISTER"`)) {
		t.Fatalf("JSON codec wrote %.40q", b)
	}
	var got api.AgentCall
	if err := api.JSON.UnmarshalAgent(b, &got); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "REGISTER", c, &got)
}

// A message cut anywhere is refused, not half read — except where the cut
// falls between two fields, which leaves a shorter valid message.
func TestAgentCallProtobufTruncated(t *testing.T) {
	b, err := api.Protobuf.MarshalAgent(sampleCalls()[0])
	if err != nil {
		t.Fatal(err)
	}
	bounds := map[int]bool{0: true} // offsets where a top-level field ends
	for off := 0; off < len(b); {
		_, _, n := protowire.ConsumeField(b[off:])
		off += n
		bounds[off] = true
	}
	for n := 0; n < len(b); n++ {
		var c api.AgentCall
		err := c.UnmarshalProto(b[:n])
		if bounds[n] != (err == nil) {
			t.Fatalf("cut at %d of %d bytes: err = %v", n, len(b), err)
		}
	}
}

// A field of the wrong wire type or a malformed nested message is refused
// with an error naming the field.
func TestAgentCallProtobufMalformed(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	register := func(inner []byte) []byte {
		return protowire.AppendBytes(tag(nil, 3, protowire.BytesType), inner)
	}
	for _, tc := range []struct {
		name, want string
		body       []byte
	}{
		{"type as a varint", "agent call.type (field 1): a varint, want length-delimited", protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 7)},
		{"register as a varint", "agent call.register (field 3)", protowire.AppendVarint(tag(nil, 3, protowire.VarintType), 1)},
		{"tasks as a fixed32", "register.tasks (field 3): a fixed32", register(protowire.AppendFixed32(tag(nil, 3, protowire.Fixed32Type), 1))},
		{"task that is not a task", "register.tasks", register(protowire.AppendBytes(tag(nil, 3, protowire.BytesType), []byte{0xff, 0xff}))},
		{"agent info without its hostname", "register.info", register(protowire.AppendBytes(tag(nil, 1, protowire.BytesType), nil))},
		{"pong seq as bytes", "pong.seq (field 1)", protowire.AppendBytes(tag(nil, 5, protowire.BytesType), protowire.AppendBytes(tag(nil, 1, protowire.BytesType), []byte("x")))},
		{"length past the end", "agent call: field 2", append(tag(nil, 2, protowire.BytesType), 100, 'a')},
		{"field number 0", "agent call: malformed field tag", []byte{0x02, 0x00}},
	} {
		var c api.AgentCall
		err := c.UnmarshalProto(tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// NaN or infinite resources and timestamps are refused with the field named.
func TestAgentCallProtobufNotFinite(t *testing.T) {
	for _, tc := range []struct {
		want  string
		spoil func(c *api.AgentCall)
	}{
		{"register.info.resources[0] (cpus): scalar NaN", func(c *api.AgentCall) { c.Register.Info.Resources[0].Scalar.Value = math.NaN() }},
		{"register.tasks[1].resources[1] (mem): scalar +Inf", func(c *api.AgentCall) { c.Register.Tasks[1].Resources[1].Scalar.Value = math.Inf(1) }},
		{"register.tasks[0].statuses[0].timestamp NaN", func(c *api.AgentCall) { *c.Register.Tasks[0].Statuses[0].Timestamp = math.NaN() }},
	} {
		c := clustertest.Reregistration("S-1", "sim-1", 2)
		tc.spoil(c)
		b, err := c.MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		var got api.AgentCall
		if err := got.UnmarshalProto(b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want one containing %q", err, tc.want)
		}
	}
}

// Fields this version does not know are skipped (either side may add some).
func TestAgentCallProtobufSkipsUnknownFields(t *testing.T) {
	b, err := api.Protobuf.MarshalAgent(&api.AgentCall{Type: api.AgentPong, AgentID: "S-1", Pong: &api.Pong{Seq: 3}})
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendVarint(protowire.AppendTag(b, 99, protowire.VarintType), 1)
	b = protowire.AppendString(protowire.AppendTag(b, 100, protowire.BytesType), "later")
	b = protowire.AppendFixed64(protowire.AppendTag(b, 101, protowire.Fixed64Type), 1)
	var c api.AgentCall
	if err := c.UnmarshalProto(b); err != nil {
		t.Fatal(err)
	}
	if c.Type != api.AgentPong || c.AgentID != "S-1" || c.Pong == nil || c.Pong.Seq != 3 {
		t.Fatalf("decoded %+v", c)
	}
}

// A task missing a field Mesos requires cannot be encoded as protobuf: the
// error says so (agents then send JSON).
func TestAgentCallProtobufRequiredField(t *testing.T) {
	c := clustertest.Reregistration("S-1", "sim-1", 1)
	c.Register.Tasks[0].State = nil
	_, err := api.Protobuf.MarshalAgent(c)
	if err == nil || !strings.Contains(err.Error(), "register.tasks") || !strings.Contains(err.Error(), "state") {
		t.Fatalf("err = %v, want one naming register.tasks and state", err)
	}
}

// sameProto fails unless m encodes to want. (Not JSON: fuzzed events
// may hold NaNs in fields JSON cannot carry.)
func sameProto(t *testing.T, what string, m api.AgentWire, want []byte) {
	t.Helper()
	got, err := m.MarshalProto()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: encodes to\n %x\nnot\n %x", what, got, want)
	}
}

// Whatever the bytes, decoding never panics, and what decodes encodes
// back to something that decodes the same.
func FuzzAgentCallProto(f *testing.F) {
	for _, c := range sampleCalls() {
		if b, err := c.MarshalProto(); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c api.AgentCall
		if c.UnmarshalProto(b) != nil {
			return
		}
		again, err := c.MarshalProto()
		if err != nil {
			return // a nested message lacking a required field Unmarshal does not check
		}
		var c2 api.AgentCall
		if err := c2.UnmarshalProto(again); err != nil {
			t.Fatalf("re-encoded call does not decode: %v", err)
		}
		sameProto(t, "re-encoded call", &c2, again)
	})
}

func FuzzAgentEventProto(f *testing.F) {
	for _, ev := range sampleEvents() {
		if b, err := ev.MarshalProto(); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev api.AgentEvent
		if ev.UnmarshalProto(b) != nil {
			return
		}
		again, err := ev.MarshalProto()
		if err != nil {
			return
		}
		var ev2 api.AgentEvent
		if err := ev2.UnmarshalProto(again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		sameProto(t, "re-encoded event", &ev2, again)
	})
}

// An event protobuf cannot carry goes as JSON in a protobuf stream, and
// reads back.
func TestAgentEventStreamFallsBackToJSON(t *testing.T) {
	ev := sampleEvents()[1]
	ev.RunTask.Task.Container = &mesos.ContainerInfo{} // type is required in protobuf
	if _, err := ev.MarshalProto(); err == nil {
		t.Fatal("a ContainerInfo without its type encoded as protobuf")
	}
	b, err := api.EncodeAgentEvent(api.Protobuf, ev)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != '{' {
		t.Fatalf("fallback record starts with %q", b[0])
	}
	got, err := api.DecodeAgentEvent(api.Protobuf, b)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "RUN_TASK", ev, got)
	for _, ev := range sampleEvents() {
		b, err := api.EncodeAgentEvent(api.Protobuf, ev)
		if err != nil || b[0] == '{' {
			t.Fatalf("%s: encoded as %.20q, %v", ev.Type, b, err)
		}
		got, err := api.DecodeAgentEvent(api.Protobuf, b)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, string(ev.Type), ev, got)
	}
}
