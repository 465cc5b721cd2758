package plan

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestExampleParses(t *testing.T) {
	data, err := os.ReadFile("../../examples/lambda-pageviews/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if s.Input.DeadLetterTopic != "pageviews-dead" || s.Input.Partitions != 2 || len(s.Views) != 4 ||
		time.Duration(s.Batch.Period) != time.Hour || s.Layers.Speed != "native" {
		t.Fatalf("parsed %+v", s)
	}
	if v, ok := s.View("visitors"); !ok || v.Type != "distinct" || v.Of != "user" || time.Duration(v.Bucket) != time.Hour {
		t.Fatalf("view visitors: %+v %v", v, ok)
	}
}

func TestDefaults(t *testing.T) {
	s, err := Parse([]byte(`
name: p
input: {topic: t, schema: {time: {field: ts}, fields: {k: string}}}
views: [{name: c, type: count, key: [k], bucket: 1m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Input.Partitions != 1 || s.Input.DeadLetterTopic != "t-dead" || s.Input.Schema.Time.Format != "unix_ms" ||
		s.Batch.Period != DefaultPeriod || s.Layers != (Layers{"embedded", "native", "native", "embedded"}) {
		t.Fatalf("defaults: %+v", s)
	}
}

// Each bad spec is refused with a message naming the field at fault.
func TestBadSpecs(t *testing.T) {
	base := func(views string) string {
		return "name: p\ninput: {topic: t, schema: {time: {field: ts}, fields: {k: string, n: int, s: string}}}\nviews: " + views + "\n"
	}
	for _, tc := range []struct{ name, spec, want string }{
		{"empty", "", "empty"},
		{"unknown key", base(`[{name: c, type: count, bucket: 1m}]`) + "colour: red\n", "field colour not found"},
		{"unknown view type", base(`[{name: c, type: median, bucket: 1m}]`), `unknown type "median"`},
		{"key not in schema", base(`[{name: c, type: count, key: [nosuch], bucket: 1m}]`), `key field "nosuch" is not in input.schema.fields`},
		{"sum of a string", base(`[{name: c, type: sum, of: s, bucket: 1m}]`), `a sum needs an int or float field`},
		{"distinct without of", base(`[{name: c, type: distinct, bucket: 1m}]`), `needs "of"`},
		{"no bucket", base(`[{name: c, type: count}]`), "bucket missing"},
		{"bad bucket", base(`[{name: c, type: count, bucket: soon}]`), `"soon" is not a duration`},
		{"duplicate view", base(`[{name: c, type: count, bucket: 1m}, {name: c, type: count, bucket: 1h}]`), "a second view of that name"},
		{"no views", base(`[]`), "views: none"},
		{"no topic", "name: p\ninput: {schema: {time: {field: ts}}}\nviews: [{name: c, type: count, bucket: 1m}]\n", "input.topic: missing"},
		{"bad layer", base(`[{name: c, type: count, bucket: 1m}]`) + "layers: {speed: flink}\n", `layers.speed "flink"`},
		{"bad field type", "name: p\ninput: {topic: t, schema: {time: {field: ts}, fields: {k: text}}}\nviews: [{name: c, type: count, bucket: 1m}]\n", `type "text"`},
		{"bad name", strings.Replace(base(`[{name: c, type: count, bucket: 1m}]`), "name: p", "name: Pipe Line", 1), `name "Pipe Line"`},
	} {
		_, err := Parse([]byte(tc.spec))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestParseEvent(t *testing.T) {
	s, err := Parse([]byte(`
name: p
input: {topic: t, schema: {time: {field: ts, format: rfc3339}, fields: {url: string, bytes: int, ok: bool, ms: float}}}
views: [{name: c, type: count, key: [url], bucket: 1m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.ParseEvent([]byte(`{"ts":"2026-12-05T10:30:00Z","url":"/a","bytes":512,"ok":true,"ms":1.5,"extra":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Time.Equal(time.Date(2026, 12, 5, 10, 30, 0, 0, time.UTC)) || ev.Fields["url"] != "/a" ||
		ev.Fields["bytes"] != int64(512) || ev.Fields["ok"] != true || ev.Fields["ms"] != 1.5 {
		t.Fatalf("event %+v", ev)
	}
	for _, tc := range []struct{ line, want string }{
		{`not json`, "not a JSON object"},
		{`{"url":"/a","bytes":1,"ok":true,"ms":1}`, `no time field "ts"`},
		{`{"ts":"yesterday","url":"/a","bytes":1,"ok":true,"ms":1}`, `time field "ts"`},
		{`{"ts":"2026-12-05T10:30:00Z","bytes":1,"ok":true,"ms":1}`, `no field "url"`},
		{`{"ts":"2026-12-05T10:30:00Z","url":"/a","bytes":1.5,"ok":true,"ms":1}`, `field "bytes": want an integer`},
		{`{"ts":"2026-12-05T10:30:00Z","url":7,"bytes":1,"ok":true,"ms":1}`, `field "url": want a string`},
		{`{"ts":"2026-12-05T10:30:00Z","url":"/a","bytes":1,"ok":"yes","ms":1}`, `field "ok": want true or false`},
	} {
		_, err := s.ParseEvent([]byte(tc.line))
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrSchema with %q", tc.line, err, tc.want)
		}
	}
}
