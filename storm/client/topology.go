package client

import (
	"fmt"
	"sort"

	"github.com/apache/thrift/lib/go/thrift"
)

// Topology is what submitTopology sends (storm.thrift's StormTopology):
// spouts and bolts by component ID. Components are multilang (shell)
// components: Storm runs their command in the topology jar's resources/
// directory and talks to it over the multilang protocol.
type Topology struct {
	Spouts map[string]Component
	Bolts  map[string]Component
}

// Component is a spout or bolt.
type Component struct {
	// Shell is the command Storm runs, e.g. {"python3", "splitsentence.py"}.
	Shell ShellComponent
	// Inputs are the streams a bolt subscribes to (spouts have none).
	Inputs []Input
	// Streams are the component's output streams by ID ("default" is the
	// usual one) with their fields.
	Streams map[string]StreamInfo
	// Parallelism is the number of executors (0: Storm's default, 1).
	Parallelism int32
	// JSONConf is component-specific configuration, a JSON object.
	JSONConf string
}

// ShellComponent is the command line of a multilang component: its
// interpreter and script.
type ShellComponent struct {
	Command string
	Script  string
}

// Input is one subscription: a stream of another component and how its
// tuples are spread over the bolt's tasks.
type Input struct {
	From     StreamID
	Grouping Grouping
}

// StreamID names a stream: a component and a stream of it.
type StreamID struct {
	ComponentID string
	StreamID    string
}

// Grouping is how a stream's tuples are spread over a bolt's tasks.
type Grouping struct {
	Kind GroupingKind
	// Fields are the grouping fields of Fields.
	Fields []string
}

// GroupingKind is one of Storm's stream groupings.
type GroupingKind int

// The groupings a topology can declare without Java classes.
const (
	Shuffle GroupingKind = iota + 1
	Fields
	Global
	All
	None
	Direct
	LocalOrShuffle
)

// StreamInfo is an output stream's fields, and whether it is direct.
type StreamInfo struct {
	OutputFields []string
	Direct       bool
}

// DefaultStream is Storm's stream ID for unnamed emits.
const DefaultStream = "default"

// validate refuses what Nimbus could not run or what cannot be encoded,
// naming the component.
func (t Topology) validate() error {
	if len(t.Spouts) == 0 {
		return fmt.Errorf("the topology has no spouts")
	}
	for id := range t.Bolts {
		if _, ok := t.Spouts[id]; ok {
			return fmt.Errorf("component %q is both a spout and a bolt", id)
		}
	}
	check := func(kind, id string, c Component) error {
		if c.Shell.Command == "" && c.Shell.Script == "" {
			return fmt.Errorf("%s %q has no shell command", kind, id)
		}
		if kind == "spout" && len(c.Inputs) > 0 {
			return fmt.Errorf("spout %q has inputs: only bolts subscribe to streams", id)
		}
		for _, in := range c.Inputs {
			from, ok := t.Spouts[in.From.ComponentID]
			if !ok {
				from, ok = t.Bolts[in.From.ComponentID]
			}
			if !ok {
				return fmt.Errorf("bolt %q subscribes to unknown component %q", id, in.From.ComponentID)
			}
			if _, ok := from.Streams[in.From.StreamID]; !ok {
				return fmt.Errorf("bolt %q subscribes to stream %q, which %q does not declare", id, in.From.StreamID, in.From.ComponentID)
			}
			if in.Grouping.Kind < Shuffle || in.Grouping.Kind > LocalOrShuffle {
				return fmt.Errorf("bolt %q: unknown grouping %d on its input from %q", id, in.Grouping.Kind, in.From.ComponentID)
			}
			if in.Grouping.Kind == Fields && len(in.Grouping.Fields) == 0 {
				return fmt.Errorf("bolt %q: fields grouping on %q without fields", id, in.From.ComponentID)
			}
		}
		return nil
	}
	for _, id := range sortedKeys(t.Spouts) {
		if err := check("spout", id, t.Spouts[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(t.Bolts) {
		if err := check("bolt", id, t.Bolts[id]); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (t Topology) write(w *wr) {
	components := func(m map[string]Component, name string) {
		ids := sortedKeys(m)
		w.mapping(thrift.STRING, thrift.STRUCT, len(ids), func() {
			for _, id := range ids {
				w.str(id)
				w.strct(name, func() { m[id].write(w) })
			}
		})
	}
	w.strct("StormTopology", func() {
		w.field("spouts", thrift.MAP, 1, func() { components(t.Spouts, "SpoutSpec") })
		w.field("bolts", thrift.MAP, 2, func() { components(t.Bolts, "Bolt") })
		w.field("state_spouts", thrift.MAP, 3, func() {
			w.mapping(thrift.STRING, thrift.STRUCT, 0, func() {})
		})
	})
}

// write writes the body of a SpoutSpec or Bolt: the same two fields.
func (c Component) write(w *wr) {
	w.field("object", thrift.STRUCT, 1, func() {
		w.strct("ComponentObject", func() {
			w.field("shell", thrift.STRUCT, 2, func() {
				w.strct("ShellComponent", func() {
					w.field("execution_command", thrift.STRING, 1, func() { w.str(c.Shell.Command) })
					w.field("script", thrift.STRING, 2, func() { w.str(c.Shell.Script) })
				})
			})
		})
	})
	w.field("common", thrift.STRUCT, 2, func() {
		w.strct("ComponentCommon", func() {
			w.field("inputs", thrift.MAP, 1, func() {
				w.mapping(thrift.STRUCT, thrift.STRUCT, len(c.Inputs), func() {
					for _, in := range c.Inputs {
						in.From.write(w)
						in.Grouping.write(w)
					}
				})
			})
			w.field("streams", thrift.MAP, 2, func() {
				ids := sortedKeys(c.Streams)
				w.mapping(thrift.STRING, thrift.STRUCT, len(ids), func() {
					for _, id := range ids {
						s := c.Streams[id]
						w.str(id)
						w.strct("StreamInfo", func() {
							w.field("output_fields", thrift.LIST, 1, func() { w.strList(s.OutputFields) })
							w.field("direct", thrift.BOOL, 2, func() { w.boolean(s.Direct) })
						})
					}
				})
			})
			if c.Parallelism > 0 {
				w.field("parallelism_hint", thrift.I32, 3, func() { w.i32(c.Parallelism) })
			}
			if c.JSONConf != "" {
				w.field("json_conf", thrift.STRING, 4, func() { w.str(c.JSONConf) })
			}
		})
	})
}

func (g StreamID) write(w *wr) {
	w.strct("GlobalStreamId", func() {
		w.field("componentId", thrift.STRING, 1, func() { w.str(g.ComponentID) })
		w.field("streamId", thrift.STRING, 2, func() { w.str(g.StreamID) })
	})
}

// write writes the Grouping union: one field set.
func (g Grouping) write(w *wr) {
	null := func(name string, id int16) {
		w.field(name, thrift.STRUCT, id, func() { w.strct("NullStruct", func() {}) })
	}
	w.strct("Grouping", func() {
		switch g.Kind {
		case Fields:
			w.field("fields", thrift.LIST, 1, func() { w.strList(g.Fields) })
		case Global: // an empty fields list
			w.field("fields", thrift.LIST, 1, func() { w.strList(nil) })
		case Shuffle:
			null("shuffle", 2)
		case All:
			null("all", 3)
		case None:
			null("none", 4)
		case Direct:
			null("direct", 5)
		case LocalOrShuffle:
			null("local_or_shuffle", 8)
		}
	})
}
