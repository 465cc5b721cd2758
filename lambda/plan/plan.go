// Package plan is a lambda pipeline's spec as `agora lambda up
// PIPELINE.yaml` reads it: the input topic and the schema of its JSON-lines
// events, the views (counts, distinct counts and sums by key and time
// bucket), the batch period and where each layer runs, with the checks
// that refuse a spec the pipeline could not run, and the parsing of one
// event against the schema.
package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Spec is a pipeline.
type Spec struct {
	// Name names the pipeline, its frameworks and its topics.
	Name  string `yaml:"name"`
	Input Input  `yaml:"input"`
	Views []View `yaml:"views"`
	Batch Batch  `yaml:"batch"`
	// Layers says where each layer runs; empty fields take the embedded
	// defaults.
	Layers Layers `yaml:"layers"`
}

// Input is where events come from and what they look like.
type Input struct {
	// Topic is the Kafka topic events are sent to.
	Topic string `yaml:"topic"`
	// Partitions is the topic's partition count (default 1).
	Partitions int `yaml:"partitions"`
	// DeadLetterTopic receives the events that do not match the schema
	// (default TOPIC-dead): counted, never dropped silently.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	Schema          Schema `yaml:"schema"`
}

// Schema is the shape of one event, a JSON object on one line.
type Schema struct {
	// Time is the field holding the event's time.
	Time TimeField `yaml:"time"`
	// Fields are the other fields the views use, by name, with their
	// types: string, int, float or bool. Fields not listed are ignored.
	Fields map[string]string `yaml:"fields"`
}

// TimeField names the event-time field and its format.
type TimeField struct {
	Field string `yaml:"field"`
	// Format is unix_ms (default), unix (seconds) or rfc3339.
	Format string `yaml:"format"`
}

// View is one aggregate the pipeline keeps and answers queries on.
type View struct {
	Name string `yaml:"name"`
	// Type is count, distinct (the number of distinct values of Of) or
	// sum (of the numeric field Of).
	Type string `yaml:"type"`
	// Key are the fields the view groups by (none: one total).
	Key []string `yaml:"key"`
	Of  string   `yaml:"of"`
	// Bucket is the time bucket of the view's rows (e.g. 1m, 1h, 24h).
	Bucket Duration `yaml:"bucket"`
}

// Batch is the batch layer's schedule.
type Batch struct {
	// Period is how often the batch views are recomputed (default 1h).
	Period Duration `yaml:"period"`
}

// Layers are the engines each layer runs on.
type Layers struct {
	// Ingest: embedded (an in-process Kafka-compatible broker) or kafka.
	Ingest string `yaml:"ingest"`
	// Speed: native (agora's own speed layer, a Kafka consumer) or storm
	// (a Storm topology, a Kafka spout and a counting bolt, on agora's
	// native Storm runtime, or on a real Storm with `up --nimbus`, which
	// implies storm).
	Speed string `yaml:"speed"`
	// Batch: native (agora's Hadoop framework), hadoop or spark.
	Batch string `yaml:"batch"`
	// Serving: embedded or cassandra.
	Serving string `yaml:"serving"`
}

// Duration is a time.Duration written as Go writes it (90s, 1h, 24h).
type Duration time.Duration

// UnmarshalYAML reads a duration such as 5m or 1h.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: a duration such as 5m or 1h, not %q", n.Line, n.Value)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 5m or 1h", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// The choices of each field, the first the default.
var (
	viewTypes   = []string{"count", "distinct", "sum"}
	fieldTypes  = []string{"string", "int", "float", "bool"}
	timeFormats = []string{"unix_ms", "unix", "rfc3339"}
	ingests     = []string{"embedded", "kafka"}
	speeds      = []string{"native", "storm"}
	batches     = []string{"native", "hadoop", "spark"}
	servings    = []string{"embedded", "cassandra"}
)

// DefaultPeriod is the batch period when the spec gives none.
const DefaultPeriod = Duration(time.Hour)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Parse reads a spec, fills its defaults and checks it. Every problem is
// reported, each naming the field at fault.
func Parse(data []byte) (*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the pipeline spec is empty")
		}
		return nil, fmt.Errorf("pipeline spec: %v", err)
	}
	s.defaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Spec) defaults() {
	if s.Input.Partitions == 0 {
		s.Input.Partitions = 1
	}
	if s.Input.DeadLetterTopic == "" && s.Input.Topic != "" {
		s.Input.DeadLetterTopic = s.Input.Topic + "-dead"
	}
	if s.Input.Schema.Time.Format == "" {
		s.Input.Schema.Time.Format = timeFormats[0]
	}
	if s.Batch.Period == 0 {
		s.Batch.Period = DefaultPeriod
	}
	l := &s.Layers
	for _, f := range []struct {
		v       *string
		choices []string
	}{{&l.Ingest, ingests}, {&l.Speed, speeds}, {&l.Batch, batches}, {&l.Serving, servings}} {
		if *f.v == "" {
			*f.v = f.choices[0]
		}
	}
}

// Validate checks a spec whose defaults are filled.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !nameRE.MatchString(s.Name) {
		bad("name %q: lower-case letters, digits, - and _, starting with a letter", s.Name)
	}
	in := s.Input
	if in.Topic == "" {
		bad("input.topic: missing (the Kafka topic events are sent to)")
	}
	if in.Partitions < 1 || in.Partitions > 1024 {
		bad("input.partitions %d: between 1 and 1024", in.Partitions)
	}
	if in.DeadLetterTopic == in.Topic && in.Topic != "" {
		bad("input.dead_letter_topic: must differ from input.topic")
	}
	sc := in.Schema
	if sc.Time.Field == "" {
		bad("input.schema.time.field: missing (the field holding each event's time)")
	}
	if !slices.Contains(timeFormats, sc.Time.Format) {
		bad("input.schema.time.format %q: one of %s", sc.Time.Format, strings.Join(timeFormats, ", "))
	}
	for _, f := range sortedKeys(sc.Fields) {
		if !slices.Contains(fieldTypes, sc.Fields[f]) {
			bad("input.schema.fields.%s: type %q, want one of %s", f, sc.Fields[f], strings.Join(fieldTypes, ", "))
		}
		if f == sc.Time.Field {
			bad("input.schema.fields.%s: it is the time field already", f)
		}
	}
	if len(s.Views) == 0 {
		bad("views: none (a pipeline answers queries on at least one view)")
	}
	seen := map[string]bool{}
	for i, v := range s.Views {
		where := fmt.Sprintf("views[%d]", i)
		if v.Name != "" {
			where = fmt.Sprintf("view %q", v.Name)
		}
		if !nameRE.MatchString(v.Name) {
			bad("%s: name %q: lower-case letters, digits, - and _, starting with a letter", where, v.Name)
		}
		if seen[v.Name] {
			bad("%s: a second view of that name", where)
		}
		seen[v.Name] = true
		if !slices.Contains(viewTypes, v.Type) {
			bad("%s: unknown type %q (want one of %s)", where, v.Type, strings.Join(viewTypes, ", "))
		}
		for _, k := range v.Key {
			if _, ok := sc.Fields[k]; !ok {
				bad("%s: key field %q is not in input.schema.fields", where, k)
			}
		}
		switch v.Type {
		case "count":
			if v.Of != "" {
				bad("%s: a count takes no \"of\" field", where)
			}
		case "distinct", "sum":
			t, ok := sc.Fields[v.Of]
			switch {
			case v.Of == "":
				bad("%s: a %s needs \"of\": the field it is over", where, v.Type)
			case !ok:
				bad("%s: field %q is not in input.schema.fields", where, v.Of)
			case v.Type == "sum" && t != "int" && t != "float":
				bad("%s: sums %q, a %s field; a sum needs an int or float field", where, v.Of, t)
			}
		}
		if v.Bucket <= 0 {
			bad("%s: bucket missing or not positive (e.g. 1m, 1h)", where)
		} else if time.Duration(v.Bucket)%time.Second != 0 {
			bad("%s: bucket %s is not a whole number of seconds", where, time.Duration(v.Bucket))
		}
	}
	if s.Batch.Period < Duration(time.Second) {
		bad("batch.period %s: at least 1s", time.Duration(s.Batch.Period))
	}
	l := s.Layers
	for _, f := range []struct {
		name, v string
		choices []string
	}{{"ingest", l.Ingest, ingests}, {"speed", l.Speed, speeds}, {"batch", l.Batch, batches}, {"serving", l.Serving, servings}} {
		if !slices.Contains(f.choices, f.v) {
			bad("layers.%s %q: one of %s", f.name, f.v, strings.Join(f.choices, ", "))
		}
	}
	return errors.Join(errs...)
}

// View returns the view of that name.
func (s *Spec) View(name string) (View, bool) {
	for _, v := range s.Views {
		if v.Name == name {
			return v, true
		}
	}
	return View{}, false
}

// Event is one event that matched the schema.
type Event struct {
	Time time.Time
	// Fields are the schema's fields, as string, int64, float64 or bool.
	Fields map[string]any
}

// ErrSchema marks an event that does not match the schema: it goes to the
// dead-letter topic.
var ErrSchema = errors.New("event does not match the schema")

// ParseEvent reads one JSON-lines event against the schema. A missing or
// mistyped field is an error wrapping ErrSchema and naming the field.
func (s *Spec) ParseEvent(line []byte) (Event, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return Event{}, fmt.Errorf("%w: not a JSON object: %v", ErrSchema, err)
	}
	ev := Event{Fields: make(map[string]any, len(s.Input.Schema.Fields))}
	tf := s.Input.Schema.Time
	tv, ok := raw[tf.Field]
	if !ok {
		return Event{}, fmt.Errorf("%w: no time field %q", ErrSchema, tf.Field)
	}
	t, err := parseTime(tv, tf.Format)
	if err != nil {
		return Event{}, fmt.Errorf("%w: time field %q: %v", ErrSchema, tf.Field, err)
	}
	ev.Time = t
	for name, typ := range s.Input.Schema.Fields {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			return Event{}, fmt.Errorf("%w: no field %q", ErrSchema, name)
		}
		val, err := parseField(v, typ)
		if err != nil {
			return Event{}, fmt.Errorf("%w: field %q: %v", ErrSchema, name, err)
		}
		ev.Fields[name] = val
	}
	return ev, nil
}

func parseTime(v json.RawMessage, format string) (time.Time, error) {
	if format == "rfc3339" {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return time.Time{}, fmt.Errorf("want an RFC 3339 string, got %s", v)
		}
		return time.Parse(time.RFC3339Nano, s)
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return time.Time{}, fmt.Errorf("want a number (%s), got %s", format, v)
	}
	i, err := n.Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("want a whole number (%s), got %s", format, v)
	}
	if format == "unix" {
		return time.Unix(i, 0).UTC(), nil
	}
	return time.UnixMilli(i).UTC(), nil
}

func parseField(v json.RawMessage, typ string) (any, error) {
	switch typ {
	case "string":
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("want a string, got %s", v)
		}
		return s, nil
	case "bool":
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return nil, fmt.Errorf("want true or false, got %s", v)
		}
		return b, nil
	case "int":
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, fmt.Errorf("want an integer, got %s", v)
		}
		i, err := n.Int64()
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %s", v)
		}
		return i, nil
	default: // float
		var f float64
		if err := json.Unmarshal(v, &f); err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("want a number, got %s", v)
		}
		return f, nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
