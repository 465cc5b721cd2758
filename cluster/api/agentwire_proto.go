package api

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"google.golang.org/protobuf/encoding/protowire"
)

// The protobuf encoding of the agent protocol. JSON costs the master about
// 0.1 ms to decode one re-registration with 10 tasks, which is what 40,000
// agents coming back to a new leader add up to; protobuf costs a tenth of
// that. The envelopes below are written by hand (they are Go structs, not
// generated messages); what they carry are mesos-go's gogo messages, which
// encode themselves. As a schema:
//
//	message AgentCall {
//	  string type = 1; string agent_id = 2; RegisterAgent register = 3;
//	  repeated StatusUpdate updates = 4; Pong pong = 5;
//	  ExecutorMessage message = 6; ExecutorExited executor_exited = 7; }
//	message RegisterAgent {
//	  mesos.AgentInfo info = 1; string version = 2; repeated mesos.Task tasks = 3;
//	  repeated mesos.ExecutorInfo executors = 4;
//	  repeated mesos.FrameworkInfo frameworks = 5; repeated string warnings = 6; }
//	message StatusUpdate {
//	  string framework_id = 1; mesos.TaskStatus status = 2;
//	  optional mesos.TaskState latest_state = 3; }
//	message Pong { uint64 seq = 1; }
//	message ExecutorMessage { string framework_id = 1; string executor_id = 2; bytes data = 3; }
//	message ExecutorExited { string framework_id = 1; string executor_id = 2; int32 status = 3; }
//
//	message AgentEvent {
//	  string type = 1; AgentRegisteredInfo registered = 2; RunTask run_task = 3;
//	  KillTask kill_task = 4; Acknowledge acknowledge = 5;
//	  ShutdownFramework shutdown_framework = 6; ShutdownExecutor shutdown_executor = 7;
//	  FrameworkMessage framework_message = 8; Ping ping = 9;
//	  ReconcileTasks reconcile_tasks = 10; }
//	message AgentRegisteredInfo {
//	  string agent_id = 1; int64 ping_interval_nanos = 2;
//	  int64 max_ping_timeouts = 3; string master_id = 4; }
//	message RunTask {
//	  mesos.FrameworkInfo framework = 1; mesos.TaskInfo task = 2;
//	  mesos.TaskGroupInfo group = 3; mesos.ExecutorInfo executor = 4; }
//	message KillTask { string framework_id = 1; string task_id = 2; mesos.KillPolicy kill_policy = 3; }
//	message Acknowledge { string framework_id = 1; string task_id = 2; bytes uuid = 3; }
//	message ShutdownFramework { string framework_id = 1; }
//	message ShutdownExecutor { string framework_id = 1; string executor_id = 2; }
//	message FrameworkMessage { string framework_id = 1; string executor_id = 2; bytes data = 3; }
//	message Ping { uint64 seq = 1; }
//	message ReconcileTasks { string framework_id = 1; repeated string task_ids = 2; }
//
// Unknown fields are skipped, so either side may add fields; a field of
// the wrong wire type, a truncated field or a malformed nested message is
// an error naming the field.

// AgentWire is a message of the agent protocol (AgentCall, AgentEvent):
// JSON through encoding/json, protobuf through these methods.
type AgentWire interface {
	MarshalProto() ([]byte, error)
	UnmarshalProto(b []byte) error
}

// MarshalAgent encodes an agent protocol message in the codec's format.
func (c Codec) MarshalAgent(v AgentWire) ([]byte, error) {
	if c.MediaType == MediaProtobuf {
		return v.MarshalProto()
	}
	return json.Marshal(v)
}

// UnmarshalAgent decodes an agent protocol message in the codec's format.
func (c Codec) UnmarshalAgent(b []byte, v AgentWire) error {
	if c.MediaType == MediaProtobuf {
		return v.UnmarshalProto(b)
	}
	return json.Unmarshal(b, v)
}

// EncodeAgentCall encodes a call to send in codec c, and says in which
// codec it did: a call protobuf cannot carry (see MarshalProto) goes as
// JSON, which the master reads too.
func EncodeAgentCall(c Codec, call *AgentCall) ([]byte, Codec, error) {
	if c.MediaType == MediaProtobuf {
		if b, err := call.MarshalProto(); err == nil {
			return b, Protobuf, nil
		}
	}
	b, err := json.Marshal(call)
	return b, JSON, err
}

// EncodeAgentEvent encodes one record of an event stream in codec c. An
// event protobuf cannot carry (a mesos-go message in it lacks a field
// protobuf requires, which JSON does not check) goes as JSON in a
// protobuf stream: DecodeAgentEvent tells the two apart by the first
// byte, since '{' never starts a protobuf AgentEvent (it would be field
// 15 as a group).
func EncodeAgentEvent(c Codec, ev *AgentEvent) ([]byte, error) {
	if c.MediaType == MediaProtobuf {
		if b, err := ev.MarshalProto(); err == nil {
			return b, nil
		}
	}
	return json.Marshal(ev)
}

// DecodeAgentEvent decodes one record of an event stream in codec c.
func DecodeAgentEvent(c Codec, b []byte) (*AgentEvent, error) {
	ev := &AgentEvent{}
	var err error
	if c.MediaType == MediaProtobuf && (len(b) == 0 || b[0] != '{') {
		err = ev.UnmarshalProto(b)
	} else {
		err = json.Unmarshal(b, ev)
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// gogoMessage is what mesos-go's generated messages offer.
type gogoMessage interface {
	Size() int
	MarshalTo([]byte) (int, error)
	Unmarshal([]byte) error
}

// pbEncoder appends fields to a buffer; the first error sticks.
type pbEncoder struct {
	b   []byte
	err error
}

func (e *pbEncoder) str(num protowire.Number, s string) {
	if s != "" {
		e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
		e.b = protowire.AppendString(e.b, s)
	}
}

func (e *pbEncoder) bytes(num protowire.Number, v []byte) {
	if len(v) > 0 {
		e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
		e.b = protowire.AppendBytes(e.b, v)
	}
}

func (e *pbEncoder) varint(num protowire.Number, v uint64) {
	if v != 0 {
		e.b = protowire.AppendTag(e.b, num, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, v)
	}
}

// msg appends a mesos-go message, in place (no intermediate buffer).
func (e *pbEncoder) msg(num protowire.Number, name string, m gogoMessage) {
	if e.err != nil {
		return
	}
	n := m.Size()
	e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
	e.b = protowire.AppendVarint(e.b, uint64(n))
	e.b = slices.Grow(e.b, n)
	w, err := m.MarshalTo(e.b[len(e.b) : len(e.b)+n])
	if err != nil {
		e.err = fmt.Errorf("encode %s: %w", name, err)
		return
	}
	e.b = e.b[:len(e.b)+w]
}

// sub appends an envelope message written by f.
func (e *pbEncoder) sub(num protowire.Number, f func(*pbEncoder)) {
	if e.err != nil {
		return
	}
	var s pbEncoder
	f(&s)
	if s.err != nil {
		e.err = s.err
		return
	}
	e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
	e.b = protowire.AppendBytes(e.b, s.b)
}

func (e *pbEncoder) result() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// pbField is one field read from a message named msg.
type pbField struct {
	msg string
	num protowire.Number
	typ protowire.Type
	raw []byte // the value, without its tag
}

// eachField calls f for every field of the message msg held in b.
func eachField(msg string, b []byte, f func(pbField) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%s: malformed field tag: %w", msg, protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return fmt.Errorf("%s: field %d: %w", msg, num, protowire.ParseError(m))
		}
		if err := f(pbField{msg: msg, num: num, typ: typ, raw: b[:m]}); err != nil {
			return err
		}
		b = b[m:]
	}
	return nil
}

func (f pbField) want(name string, typ protowire.Type) error {
	if f.typ != typ {
		return fmt.Errorf("%s.%s (field %d): %s, want %s", f.msg, name, f.num, wireTypeName(f.typ), wireTypeName(typ))
	}
	return nil
}

func wireTypeName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "a varint"
	case protowire.BytesType:
		return "length-delimited"
	case protowire.Fixed32Type:
		return "a fixed32"
	case protowire.Fixed64Type:
		return "a fixed64"
	}
	return fmt.Sprintf("wire type %d", t)
}

func (f pbField) bytes(name string) ([]byte, error) {
	if err := f.want(name, protowire.BytesType); err != nil {
		return nil, err
	}
	v, _ := protowire.ConsumeBytes(f.raw) // checked by eachField
	return v, nil
}

func (f pbField) str(name string) (string, error) {
	v, err := f.bytes(name)
	return string(v), err
}

func (f pbField) varint(name string) (uint64, error) {
	if err := f.want(name, protowire.VarintType); err != nil {
		return 0, err
	}
	v, _ := protowire.ConsumeVarint(f.raw)
	return v, nil
}

// gogo decodes a mesos-go message into m.
func (f pbField) gogo(name string, m gogoMessage) error {
	b, err := f.bytes(name)
	if err != nil {
		return err
	}
	if err := m.Unmarshal(b); err != nil {
		return fmt.Errorf("%s.%s: %w", f.msg, name, err)
	}
	return nil
}

// MarshalProto encodes the call as protobuf (see the schema above). It
// fails only when a mesos-go message lacks a required field; JSON, which
// does not check those, can still carry the call.
func (c *AgentCall) MarshalProto() ([]byte, error) {
	e := &pbEncoder{}
	e.str(1, string(c.Type))
	e.str(2, c.AgentID)
	if r := c.Register; r != nil {
		e.sub(3, r.appendProto)
	}
	for _, u := range c.Updates {
		if u != nil {
			e.sub(4, u.appendProto)
		}
	}
	if p := c.Pong; p != nil {
		e.sub(5, func(s *pbEncoder) { s.varint(1, p.Seq) })
	}
	if m := c.Message; m != nil {
		e.sub(6, func(s *pbEncoder) { s.str(1, m.FrameworkID); s.str(2, m.ExecutorID); s.bytes(3, m.Data) })
	}
	if x := c.ExecutorExited; x != nil {
		e.sub(7, func(s *pbEncoder) {
			s.str(1, x.FrameworkID)
			s.str(2, x.ExecutorID)
			s.varint(3, uint64(int64(x.Status)))
		})
	}
	return e.result()
}

func (r *RegisterAgent) appendProto(e *pbEncoder) {
	if r.Info != nil {
		e.msg(1, "register.info", r.Info)
	}
	e.str(2, r.Version)
	for _, t := range r.Tasks {
		if t != nil {
			e.msg(3, "register.tasks", t)
		}
	}
	for _, x := range r.Executors {
		if x != nil {
			e.msg(4, "register.executors", x)
		}
	}
	for _, f := range r.Frameworks {
		if f != nil {
			e.msg(5, "register.frameworks", f)
		}
	}
	for _, w := range r.Warnings {
		e.b = protowire.AppendTag(e.b, 6, protowire.BytesType)
		e.b = protowire.AppendString(e.b, w)
	}
}

func (u *StatusUpdate) appendProto(e *pbEncoder) {
	e.str(1, u.FrameworkID)
	if u.Status != nil {
		e.msg(2, "updates.status", u.Status)
	}
	if u.LatestState != nil {
		// Present even when zero: TASK_STARTING is 0.
		e.b = protowire.AppendTag(e.b, 3, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, uint64(int64(*u.LatestState)))
	}
}

// UnmarshalProto decodes a call encoded by MarshalProto into c (which
// should be zero).
func (c *AgentCall) UnmarshalProto(b []byte) error {
	if err := c.unmarshalProto(b); err != nil {
		return err
	}
	return c.checkFinite()
}

// checkFinite refuses NaN and infinite resources and timestamps, which
// protobuf carries but JSON does not: the master would do arithmetic with
// them and could no longer render its state.
func (c *AgentCall) checkFinite() error {
	if r := c.Register; r != nil {
		if r.Info != nil {
			if i := nonFinite(r.Info.Resources); i >= 0 {
				return notFinite("register.info", r.Info.Resources[i], i)
			}
		}
		for i, t := range r.Tasks {
			if j := nonFinite(t.Resources); j >= 0 {
				return notFinite(fmt.Sprintf("register.tasks[%d]", i), t.Resources[j], j)
			}
			for j := range t.Statuses {
				if ts := t.Statuses[j].Timestamp; ts != nil && !finite(*ts) {
					return fmt.Errorf("agent call: register.tasks[%d].statuses[%d].timestamp %v is not a finite number", i, j, *ts)
				}
			}
		}
		for i, x := range r.Executors {
			if j := nonFinite(x.Resources); j >= 0 {
				return notFinite(fmt.Sprintf("register.executors[%d]", i), x.Resources[j], j)
			}
		}
	}
	for i, u := range c.Updates {
		if u.Status != nil && u.Status.Timestamp != nil && !finite(*u.Status.Timestamp) {
			return fmt.Errorf("agent call: updates[%d].timestamp %v is not a finite number", i, *u.Status.Timestamp)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// nonFinite is the index of the first resource with a NaN or infinite
// scalar, or -1.
func nonFinite(rs []mesos.Resource) int {
	for i := range rs {
		if s := rs[i].Scalar; s != nil && !finite(s.Value) {
			return i
		}
	}
	return -1
}

func notFinite(what string, r mesos.Resource, i int) error {
	return fmt.Errorf("agent call: %s.resources[%d] (%s): scalar %v is not a finite number", what, i, r.Name, r.Scalar.Value)
}

func (c *AgentCall) unmarshalProto(b []byte) error {
	return eachField("agent call", b, func(f pbField) error {
		var err error
		switch f.num {
		case 1:
			var s string
			s, err = f.str("type")
			c.Type = AgentCallType(s)
		case 2:
			c.AgentID, err = f.str("agent_id")
		case 3:
			var v []byte
			if v, err = f.bytes("register"); err == nil {
				c.Register = &RegisterAgent{}
				err = c.Register.unmarshalProto(v)
			}
		case 4:
			var v []byte
			if v, err = f.bytes("updates"); err == nil {
				u := &StatusUpdate{}
				err = u.unmarshalProto(v)
				c.Updates = append(c.Updates, u)
			}
		case 5:
			var v []byte
			if v, err = f.bytes("pong"); err == nil {
				p := &Pong{}
				c.Pong = p
				err = eachField("pong", v, func(f pbField) (err error) {
					if f.num == 1 {
						p.Seq, err = f.varint("seq")
					}
					return err
				})
			}
		case 6:
			var v []byte
			if v, err = f.bytes("message"); err == nil {
				m := &ExecutorMessage{}
				c.Message = m
				err = eachField("message", v, func(f pbField) (err error) {
					switch f.num {
					case 1:
						m.FrameworkID, err = f.str("framework_id")
					case 2:
						m.ExecutorID, err = f.str("executor_id")
					case 3:
						m.Data, err = f.bytes("data")
						m.Data = slices.Clone(m.Data)
					}
					return err
				})
			}
		case 7:
			var v []byte
			if v, err = f.bytes("executor_exited"); err == nil {
				x := &ExecutorExited{}
				c.ExecutorExited = x
				err = eachField("executor_exited", v, func(f pbField) (err error) {
					switch f.num {
					case 1:
						x.FrameworkID, err = f.str("framework_id")
					case 2:
						x.ExecutorID, err = f.str("executor_id")
					case 3:
						var s uint64
						s, err = f.varint("status")
						x.Status = int32(s)
					}
					return err
				})
			}
		}
		return err
	})
}

func (r *RegisterAgent) unmarshalProto(b []byte) error {
	return eachField("register", b, func(f pbField) (err error) {
		switch f.num {
		case 1:
			r.Info = &mesos.AgentInfo{}
			err = f.gogo("info", r.Info)
		case 2:
			r.Version, err = f.str("version")
		case 3:
			t := &mesos.Task{}
			err = f.gogo("tasks", t)
			r.Tasks = append(r.Tasks, t)
		case 4:
			x := &mesos.ExecutorInfo{}
			err = f.gogo("executors", x)
			r.Executors = append(r.Executors, x)
		case 5:
			fi := &mesos.FrameworkInfo{}
			err = f.gogo("frameworks", fi)
			r.Frameworks = append(r.Frameworks, fi)
		case 6:
			var w string
			w, err = f.str("warnings")
			r.Warnings = append(r.Warnings, w)
		}
		return err
	})
}

func (u *StatusUpdate) unmarshalProto(b []byte) error {
	return eachField("updates", b, func(f pbField) (err error) {
		switch f.num {
		case 1:
			u.FrameworkID, err = f.str("framework_id")
		case 2:
			u.Status = &mesos.TaskStatus{}
			err = f.gogo("status", u.Status)
		case 3:
			var v uint64
			v, err = f.varint("latest_state")
			s := mesos.TaskState(int32(v))
			u.LatestState = &s
		}
		return err
	})
}

// MarshalProto encodes the event as protobuf (see the schema above).
func (ev *AgentEvent) MarshalProto() ([]byte, error) {
	e := &pbEncoder{}
	e.str(1, string(ev.Type))
	if r := ev.Registered; r != nil {
		e.sub(2, func(s *pbEncoder) {
			s.str(1, r.AgentID)
			s.varint(2, uint64(r.PingIntervalNanos))
			s.varint(3, uint64(int64(r.MaxPingTimeouts)))
			s.str(4, r.MasterID)
		})
	}
	if r := ev.RunTask; r != nil {
		e.sub(3, func(s *pbEncoder) {
			if r.Framework != nil {
				s.msg(1, "run_task.framework", r.Framework)
			}
			if r.Task != nil {
				s.msg(2, "run_task.task", r.Task)
			}
			if r.Group != nil {
				s.msg(3, "run_task.group", r.Group)
			}
			if r.Executor != nil {
				s.msg(4, "run_task.executor", r.Executor)
			}
		})
	}
	if k := ev.KillTask; k != nil {
		e.sub(4, func(s *pbEncoder) {
			s.str(1, k.FrameworkID)
			s.str(2, k.TaskID)
			if k.KillPolicy != nil {
				s.msg(3, "kill_task.kill_policy", k.KillPolicy)
			}
		})
	}
	if a := ev.Acknowledge; a != nil {
		e.sub(5, func(s *pbEncoder) { s.str(1, a.FrameworkID); s.str(2, a.TaskID); s.bytes(3, a.UUID) })
	}
	if x := ev.ShutdownFramework; x != nil {
		e.sub(6, func(s *pbEncoder) { s.str(1, x.FrameworkID) })
	}
	if x := ev.ShutdownExecutor; x != nil {
		e.sub(7, func(s *pbEncoder) { s.str(1, x.FrameworkID); s.str(2, x.ExecutorID) })
	}
	if m := ev.FrameworkMessage; m != nil {
		e.sub(8, func(s *pbEncoder) { s.str(1, m.FrameworkID); s.str(2, m.ExecutorID); s.bytes(3, m.Data) })
	}
	if p := ev.Ping; p != nil {
		e.sub(9, func(s *pbEncoder) { s.varint(1, p.Seq) })
	}
	if r := ev.ReconcileTasks; r != nil {
		e.sub(10, func(s *pbEncoder) {
			s.str(1, r.FrameworkID)
			for _, id := range r.TaskIDs {
				s.b = protowire.AppendTag(s.b, 2, protowire.BytesType)
				s.b = protowire.AppendString(s.b, id)
			}
		})
	}
	return e.result()
}

// UnmarshalProto decodes an event encoded by MarshalProto into ev (which
// should be zero).
func (ev *AgentEvent) UnmarshalProto(b []byte) error {
	return eachField("agent event", b, func(f pbField) error {
		if f.num == 1 {
			s, err := f.str("type")
			ev.Type = AgentEventType(s)
			return err
		}
		name, decode := ev.subDecoder(f.num)
		if decode == nil {
			return nil // unknown: skipped
		}
		v, err := f.bytes(name)
		if err != nil {
			return err
		}
		return eachField(name, v, decode)
	})
}

// subDecoder allocates the member of ev that field num holds and returns
// its name and a decoder of its fields (nil for an unknown field).
func (ev *AgentEvent) subDecoder(num protowire.Number) (string, func(pbField) error) {
	switch num {
	case 2:
		r := &AgentRegisteredInfo{}
		ev.Registered = r
		return "registered", func(f pbField) (err error) {
			var v uint64
			switch f.num {
			case 1:
				r.AgentID, err = f.str("agent_id")
			case 2:
				v, err = f.varint("ping_interval_nanos")
				r.PingIntervalNanos = int64(v)
			case 3:
				v, err = f.varint("max_ping_timeouts")
				r.MaxPingTimeouts = int(int64(v))
			case 4:
				r.MasterID, err = f.str("master_id")
			}
			return err
		}
	case 3:
		r := &RunTask{}
		ev.RunTask = r
		return "run_task", func(f pbField) error {
			switch f.num {
			case 1:
				r.Framework = &mesos.FrameworkInfo{}
				return f.gogo("framework", r.Framework)
			case 2:
				r.Task = &mesos.TaskInfo{}
				return f.gogo("task", r.Task)
			case 3:
				r.Group = &mesos.TaskGroupInfo{}
				return f.gogo("group", r.Group)
			case 4:
				r.Executor = &mesos.ExecutorInfo{}
				return f.gogo("executor", r.Executor)
			}
			return nil
		}
	case 4:
		k := &KillTask{}
		ev.KillTask = k
		return "kill_task", func(f pbField) (err error) {
			switch f.num {
			case 1:
				k.FrameworkID, err = f.str("framework_id")
			case 2:
				k.TaskID, err = f.str("task_id")
			case 3:
				k.KillPolicy = &mesos.KillPolicy{}
				err = f.gogo("kill_policy", k.KillPolicy)
			}
			return err
		}
	case 5:
		a := &Acknowledge{}
		ev.Acknowledge = a
		return "acknowledge", func(f pbField) (err error) {
			switch f.num {
			case 1:
				a.FrameworkID, err = f.str("framework_id")
			case 2:
				a.TaskID, err = f.str("task_id")
			case 3:
				a.UUID, err = f.bytes("uuid")
				a.UUID = slices.Clone(a.UUID)
			}
			return err
		}
	case 6:
		x := &ShutdownFramework{}
		ev.ShutdownFramework = x
		return "shutdown_framework", func(f pbField) (err error) {
			if f.num == 1 {
				x.FrameworkID, err = f.str("framework_id")
			}
			return err
		}
	case 7:
		x := &ShutdownExecutor{}
		ev.ShutdownExecutor = x
		return "shutdown_executor", func(f pbField) (err error) {
			switch f.num {
			case 1:
				x.FrameworkID, err = f.str("framework_id")
			case 2:
				x.ExecutorID, err = f.str("executor_id")
			}
			return err
		}
	case 8:
		m := &FrameworkMessage{}
		ev.FrameworkMessage = m
		return "framework_message", func(f pbField) (err error) {
			switch f.num {
			case 1:
				m.FrameworkID, err = f.str("framework_id")
			case 2:
				m.ExecutorID, err = f.str("executor_id")
			case 3:
				m.Data, err = f.bytes("data")
				m.Data = slices.Clone(m.Data)
			}
			return err
		}
	case 9:
		p := &Ping{}
		ev.Ping = p
		return "ping", func(f pbField) (err error) {
			if f.num == 1 {
				p.Seq, err = f.varint("seq")
			}
			return err
		}
	case 10:
		r := &ReconcileTasks{}
		ev.ReconcileTasks = r
		return "reconcile_tasks", func(f pbField) error {
			switch f.num {
			case 1:
				s, err := f.str("framework_id")
				r.FrameworkID = s
				return err
			case 2:
				s, err := f.str("task_ids")
				r.TaskIDs = append(r.TaskIDs, s)
				return err
			}
			return nil
		}
	}
	return "", nil
}
