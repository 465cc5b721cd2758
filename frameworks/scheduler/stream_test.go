package scheduler

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
)

// readEvents decodes a RecordIO stream of scheduler events.
func readEvents(t *testing.T, r io.Reader, codec api.Codec) []scheduler.Event {
	t.Helper()
	rr := api.NewRecordReader(r)
	var out []scheduler.Event
	for {
		rec, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("record %d: %v", len(out), err)
		}
		var ev scheduler.Event
		if err := codec.Unmarshal(rec, &ev); err != nil {
			t.Fatalf("decode record %d (%s): %v", len(out), rec, err)
		}
		out = append(out, ev)
	}
}

// recordedEvents is a stream as the master writes it in JSON (Mesos dialect).
func recordedEvents(t *testing.T) []scheduler.Event {
	f, err := os.Open("testdata/events.json.recordio")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readEvents(t, f, api.JSON)
}

func TestRecordedStreamDecodesJSON(t *testing.T) {
	evs := recordedEvents(t)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type.String())
	}
	want := "SUBSCRIBED HEARTBEAT OFFERS UPDATE UPDATE RESCIND FAILURE ERROR"
	if got := join(types); got != want {
		t.Fatalf("event types = %s, want %s", got, want)
	}
	sub := evs[0].GetSubscribed()
	if sub.GetFrameworkID().GetValue() != "5b2c1d3e-0000-4f00-8000-000000000001-0000" || sub.GetHeartbeatIntervalSeconds() != 15 {
		t.Errorf("SUBSCRIBED = %+v", sub)
	}
	o := evs[2].GetOffers().GetOffers()[0]
	if o.Hostname != "node1" || len(o.Resources) != 4 || o.Resources[3].GetRanges().GetRange()[0].End != 32000 {
		t.Errorf("offer = %+v", o)
	}
	if o.Resources[0].AllocationInfo.GetRole() != "*" {
		t.Errorf("offer cpus allocation role = %q, want *", o.Resources[0].AllocationInfo.GetRole())
	}
	if st := evs[3].GetUpdate().GetStatus(); len(st.UUID) != 16 || st.GetState() != mesos.TASK_RUNNING {
		t.Errorf("update = %+v, want TASK_RUNNING with a 16-byte uuid", st)
	}
	if evs[6].GetFailure().GetStatus() != 256 {
		t.Errorf("failure status = %d, want 256", evs[6].GetFailure().GetStatus())
	}
}

func TestRecordedStreamDecodesProtobuf(t *testing.T) {
	evs := recordedEvents(t)
	var buf bytes.Buffer
	w := api.NewRecordWriter(&buf)
	for i := range evs {
		b, err := api.Protobuf.Marshal(&evs[i])
		if err != nil {
			t.Fatalf("encode %s: %v", evs[i].Type, err)
		}
		if err := w.WriteRecord(b); err != nil {
			t.Fatal(err)
		}
	}
	got := readEvents(t, &buf, api.Protobuf)
	if len(got) != len(evs) {
		t.Fatalf("decoded %d events, want %d", len(got), len(evs))
	}
	for i := range evs {
		if !got[i].Equal(&evs[i]) {
			t.Errorf("event %d: protobuf round trip changed it:\n got %v\nwant %v", i, &got[i], &evs[i])
		}
	}
}

// recorder is a Handler that notes the events it is given.
type recorder struct {
	Funcs
	seen []string
}

func newRecorder() *recorder {
	r := &recorder{}
	note := func(s string) { r.seen = append(r.seen, s) }
	r.Funcs = Funcs{
		OnSubscribed: func(context.Context, *scheduler.Event_Subscribed) { note("subscribed") },
		OnOffers:     func(_ context.Context, os []mesos.Offer) { note("offers:" + os[0].ID.Value) },
		OnRescind:    func(_ context.Context, id mesos.OfferID) { note("rescind:" + id.Value) },
		OnUpdate:     func(_ context.Context, s mesos.TaskStatus) { note("update:" + s.GetState().String()) },
		OnFailure:    func(context.Context, *scheduler.Event_Failure) { note("failure") },
		OnError:      func(_ context.Context, m string) { note("error:" + m) },
		OnHeartbeat:  func(context.Context) { note("heartbeat") },
	}
	return r
}

func TestDispatchAcknowledgesOnlyUpdatesWithUUID(t *testing.T) {
	for _, manual := range []bool{false, true} {
		h := newRecorder()
		d, err := New(Config{Masters: []string{"127.0.0.1:5050"}, Framework: mesos.FrameworkInfo{Name: "t"}, ManualAcks: manual}, h)
		if err != nil {
			t.Fatal(err)
		}
		var acks int
		var fatalErr error
		for _, ev := range recordedEvents(t) {
			ack, err := d.dispatch(context.Background(), &ev)
			if err != nil {
				fatalErr = err
				break
			}
			if ack != nil {
				acks++
				if len(ack.UUID) != 16 || ack.AgentID.GetValue() != "agent-1-S0" {
					t.Errorf("ack of %+v", ack)
				}
			}
		}
		wantAcks := 1
		if manual {
			wantAcks = 0
		}
		if acks != wantAcks {
			t.Errorf("manual=%v: %d acks, want %d (only the update with a uuid)", manual, acks, wantAcks)
		}
		var me *MasterError
		if !errors.As(fatalErr, &me) || me.Message != "Framework has been removed" {
			t.Errorf("ERROR event gave %v, want a *MasterError", fatalErr)
		}
		want := "subscribed heartbeat offers:offer-1 update:TASK_RUNNING update:TASK_RUNNING rescind:offer-1 failure error:Framework has been removed"
		if got := join(h.seen); got != want {
			t.Errorf("handler saw %s\nwant %s", got, want)
		}
	}
}

func TestCallWithoutSubscription(t *testing.T) {
	d, err := New(Config{Masters: []string{"127.0.0.1:5050"}, Framework: mesos.FrameworkInfo{Name: "t"}}, Funcs{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Decline(context.Background(), []mesos.OfferID{{Value: "o"}}, 0); !errors.Is(err, ErrNotSubscribed) {
		t.Errorf("Decline before SUBSCRIBED = %v, want ErrNotSubscribed", err)
	}
	if d.FrameworkID() != "" || d.Subscribed() {
		t.Errorf("fresh driver: FrameworkID %q, Subscribed %v", d.FrameworkID(), d.Subscribed())
	}
}

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{Masters: []string{"m:5050"}, Framework: mesos.FrameworkInfo{Name: "t"}}
	bad := map[string]Config{
		"no masters":            {Framework: ok.Framework},
		"no name":               {Masters: ok.Masters},
		"zk and another master": {Masters: []string{"zk://z:2181/mesos", "m:5050"}, Framework: ok.Framework},
		"bad zk URL":            {Masters: []string{"zk://z:2181"}, Framework: ok.Framework},
	}
	for name, cfg := range bad {
		if _, err := New(cfg, Funcs{}); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	d, err := New(ok, Funcs{})
	if err != nil {
		t.Fatal(err)
	}
	if d.info.User == "" || d.codec != api.Protobuf {
		t.Errorf("defaults: user %q codec %v, want a user and protobuf", d.info.User, d.codec)
	}
}

func TestSuppressedRolesFollowSuppressAndRevive(t *testing.T) {
	multi := mesos.FrameworkInfo{Roles: []string{"a", "b"}, Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}}}
	set := suppress(nil, nil, frameworkRoles(multi))
	if join(set) != "a b" {
		t.Errorf("suppress all = %v, want [a b]", set)
	}
	set = unsuppress(set, []string{"a"})
	if join(set) != "b" {
		t.Errorf("revive a = %v, want [b]", set)
	}
	set = suppress(set, []string{"b", "c"}, nil)
	if join(set) != "b c" {
		t.Errorf("suppress b c = %v, want [b c]", set)
	}
	if set = unsuppress(set, nil); len(set) != 0 {
		t.Errorf("revive all = %v, want none", set)
	}
	role := "web"
	if got := frameworkRoles(mesos.FrameworkInfo{Role: &role}); join(got) != "web" {
		t.Errorf("legacy role = %v", got)
	}
	if got := frameworkRoles(mesos.FrameworkInfo{}); join(got) != "*" {
		t.Errorf("default role = %v", got)
	}
}

func join(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}
