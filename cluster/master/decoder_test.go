package master

import (
	"bytes"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/api"
)

// Events are framed on a codec worker in the stream's codec; what is not
// an event is left out with an error naming it, and a codec that panics
// is an error for its caller, not the end of the worker.
func TestEncodeAgentEventsOnTheCodecWorkers(t *testing.T) {
	ping := &api.AgentEvent{Type: api.AgentPing}
	for _, codec := range []api.Codec{api.JSON, api.Protobuf} {
		frames, errs, fatal := encodeAgentEvents(codec, []any{ping, "not an event", ping})
		if fatal != nil {
			t.Fatalf("%s: %v", codec.MediaType, fatal)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "string") {
			t.Fatalf("%s: errors %v; want one naming the string left out", codec.MediaType, errs)
		}
		r := api.NewRecordReader(bytes.NewReader(frames))
		for i := range 2 {
			b, err := r.ReadRecord()
			if err != nil {
				t.Fatalf("%s: record %d: %v", codec.MediaType, i, err)
			}
			ev, err := api.DecodeAgentEvent(codec, b)
			if err != nil || ev.Type != api.AgentPing {
				t.Fatalf("%s: record %d decodes to %+v, %v", codec.MediaType, i, ev, err)
			}
		}
		if _, err := r.ReadRecord(); err == nil {
			t.Fatalf("%s: more than the two events framed", codec.MediaType)
		}
	}
	// A backlog longer than one job goes out whole and in order.
	var backlog []any
	for i := range 3*maxEventsPerEncode + 5 {
		backlog = append(backlog, &api.AgentEvent{Type: api.AgentPing, Ping: &api.Ping{Seq: uint64(i)}})
	}
	frames, errs, fatal := encodeAgentEvents(api.Protobuf, backlog)
	if len(errs) != 0 || fatal != nil {
		t.Fatalf("backlog: %v, %v", errs, fatal)
	}
	r := api.NewRecordReader(bytes.NewReader(frames))
	for i := range backlog {
		b, err := r.ReadRecord()
		if err != nil {
			t.Fatalf("backlog record %d: %v", i, err)
		}
		ev, err := api.DecodeAgentEvent(api.Protobuf, b)
		if err != nil || ev.Ping == nil || ev.Ping.Seq != uint64(i) {
			t.Fatalf("backlog record %d decodes to %+v, %v", i, ev, err)
		}
	}
	err := onCodecWorker(func() error { panic("hostile input") })
	if err == nil || !strings.Contains(err.Error(), "hostile input") {
		t.Fatalf("a panicking codec gave %v", err)
	}
	if err := onCodecWorker(func() error { return nil }); err != nil {
		t.Fatalf("the workers after a panic: %v", err)
	}
}
