package api

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestParseAndFormatResources(t *testing.T) {
	rs, err := ParseResources("cpus:4; mem:8192;disk:100;ports:[31000-31005,31003-32000];gpus:0;cpus(analytics):2;labels:{a,b}")
	if err != nil {
		t.Fatal(err)
	}
	if got := ScalarSum(rs, "cpus"); got != 6 {
		t.Fatalf("cpus sum %v, want 6", got)
	}
	var ports *mesos.Value_Ranges
	for _, r := range rs {
		if r.Name == "ports" {
			ports = r.Ranges
		}
	}
	if len(ports.GetRange()) != 1 || ports.Range[0].Begin != 31000 || ports.Range[0].End != 32000 {
		t.Fatalf("ports not squashed: %v", ports)
	}
	if rs[5].ReservationRole() != "analytics" {
		t.Fatalf("static reservation lost: %v", rs[5])
	}
	text := FormatResources(rs)
	again, err := ParseResources(text)
	if err != nil {
		t.Fatalf("re-parse %q: %v", text, err)
	}
	if FormatResources(again) != text {
		t.Fatalf("round trip changed %q into %q", text, FormatResources(again))
	}
	flat := FlattenResources(rs)
	if flat["ports"] != "[31000-32000]" || flat["mem"] != 8192.0 {
		t.Fatalf("flattened %v", flat)
	}
}

func TestParseResourcesErrors(t *testing.T) {
	for _, bad := range []string{"cpus", "cpus:-1", "ports:[5-3]", "ports:[1-2", "(x):1", "cpus():1", "mem:NaN"} {
		if _, err := ParseResources(bad); err == nil {
			t.Errorf("ParseResources(%q) succeeded", bad)
		}
	}
}

func TestResponseCodec(t *testing.T) {
	for accept, want := range map[string]string{
		"": MediaJSON, "*/*": MediaJSON, "application/x-protobuf": MediaProtobuf,
		"application/x-protobuf, application/json;q=0.5": MediaJSON, "application/json;q=0, application/x-protobuf": MediaProtobuf,
	} {
		c, err := ResponseCodec(accept)
		if err != nil || c.MediaType != want {
			t.Errorf("ResponseCodec(%q) = %v, %v; want %s", accept, c.MediaType, err, want)
		}
	}
	if _, err := ResponseCodec("text/html"); err == nil {
		t.Error("text/html accepted")
	}
	if _, err := RequestCodec("application/json; charset=utf-8"); err != nil {
		t.Error(err)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[int64]string{5e9: "5secs", 15 * 60e9: "15mins", 2e9: "2secs", 5e8: "500ms", 90e9: "1.5mins"} {
		if got := FormatDuration(durationOf(d)); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}
