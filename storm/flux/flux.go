// Package flux reads Storm Flux topology definitions (YAML): the
// topology's name and configuration, its spouts and bolts, the streams
// between them with their groupings, and Flux's components section. The
// spouts and bolts agora runs are multilang shell components, written as
// Flux writes them: className FluxShellSpout or FluxShellBolt with
// constructorArgs [command array, output fields]. Their scripts live in a
// resources directory, which becomes the topology jar's resources/.
//
// Load refuses what could not run — a stream naming a missing component,
// an unknown grouping, a fields grouping without fields, a script that is
// missing or not executable, a parallelism below 1, a Java component —
// before anything is sent anywhere, naming what is wrong.
package flux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The classes Flux wraps multilang components in.
const (
	ShellSpoutClass = "org.apache.storm.flux.wrappers.spouts.FluxShellSpout"
	ShellBoltClass  = "org.apache.storm.flux.wrappers.bolts.FluxShellBolt"
)

// DefaultStream is Storm's stream ID for unnamed emits.
const DefaultStream = "default"

// Topology is a Flux topology definition.
type Topology struct {
	Name       string         `yaml:"name"`
	Config     map[string]any `yaml:"config"`
	Components []Object       `yaml:"components"`
	Spouts     []Component    `yaml:"spouts"`
	Bolts      []Component    `yaml:"bolts"`
	Streams    []Stream       `yaml:"streams"`
	// Flux features agora does not take; given, they are refused.
	Includes       []any `yaml:"includes"`
	TopologySource any   `yaml:"topologySource"`

	// Resources is the directory of the components' scripts (the jar's
	// resources/, where Storm runs the commands).
	Resources string `yaml:"-"`
}

// Object is an entry of Flux's components section: a Java object other
// definitions refer to by ID.
type Object struct {
	ID              string   `yaml:"id"`
	ClassName       string   `yaml:"className"`
	ConstructorArgs []any    `yaml:"constructorArgs"`
	Properties      []any    `yaml:"properties"`
	ConfigMethods   []Method `yaml:"configMethods"`
}

// Component is a spout or bolt definition.
type Component struct {
	ID              string   `yaml:"id"`
	ClassName       string   `yaml:"className"`
	ConstructorArgs []any    `yaml:"constructorArgs"`
	Parallelism     *int     `yaml:"parallelism"`
	Properties      []any    `yaml:"properties"`
	ConfigMethods   []Method `yaml:"configMethods"`

	// What the shell component runs and declares, read from the above.
	Command []string            `yaml:"-"`
	Outputs map[string][]string `yaml:"-"` // output fields by stream ID
	Conf    map[string]any      `yaml:"-"` // component configuration (addComponentConfig)
}

// Method is a configMethods entry: a method called with arguments.
type Method struct {
	Name string `yaml:"name"`
	Args []any  `yaml:"args"`
}

// Stream connects a component's stream to a bolt.
type Stream struct {
	Name     string   `yaml:"name"`
	From     string   `yaml:"from"`
	To       string   `yaml:"to"`
	Grouping Grouping `yaml:"grouping"`
}

// Grouping is how a stream's tuples are spread over the bolt's tasks.
type Grouping struct {
	Type        string   `yaml:"type"`
	Args        []string `yaml:"args"`
	StreamID    string   `yaml:"streamId"`
	CustomClass any      `yaml:"customClass"`
}

// The grouping types Flux knows.
const (
	GroupShuffle        = "SHUFFLE"
	GroupFields         = "FIELDS"
	GroupAll            = "ALL"
	GroupGlobal         = "GLOBAL"
	GroupLocalOrShuffle = "LOCAL_OR_SHUFFLE"
	GroupDirect         = "DIRECT"
	GroupNone           = "NONE"
	GroupCustom         = "CUSTOM"
)

// ParallelismOrDefault is the component's executors (Flux's default is 1).
func (c Component) ParallelismOrDefault() int {
	if c.Parallelism == nil {
		return 1
	}
	return *c.Parallelism
}

// Load reads and checks the Flux file at path. resources is the scripts'
// directory; "" means resources/ beside the file if there is one, else
// the file's own directory.
func Load(path, resources string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("flux: %w", err)
	}
	return parseFile(path, data, resources)
}

// parseFile parses data, the text of the file at path; resources
// defaults to resources/ beside it, else its directory.
func parseFile(path string, data []byte, resources string) (*Topology, error) {
	if resources == "" {
		dir := filepath.Dir(path)
		resources = dir
		if fi, err := os.Stat(filepath.Join(dir, "resources")); err == nil && fi.IsDir() {
			resources = filepath.Join(dir, "resources")
		}
	}
	t, err := Parse(data, resources)
	if err != nil {
		return nil, fmt.Errorf("flux %s: %w", path, err)
	}
	return t, nil
}

// Parse reads and checks a Flux definition whose scripts are in
// resources.
func Parse(data []byte, resources string) (*Topology, error) {
	var t Topology
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the definition is empty")
		}
		return nil, fmt.Errorf("not a Flux definition: %w", err)
	}
	t.Resources = resources
	if err := t.check(); err != nil {
		return nil, err
	}
	return &t, nil
}

// check validates the definition and fills in each component's command,
// outputs and configuration.
func (t *Topology) check() error {
	if t.Includes != nil {
		return errors.New("includes are not supported: put the whole topology in one file")
	}
	if t.TopologySource != nil {
		return errors.New("topologySource needs a Java class: define spouts, bolts and streams instead")
	}
	if len(t.Spouts) == 0 {
		return errors.New("the topology has no spouts")
	}
	ids := map[string]string{}
	for _, o := range t.Components {
		if o.ID == "" {
			return errors.New("a component has no id")
		}
		if _, dup := ids[o.ID]; dup {
			return fmt.Errorf("id %q is defined twice", o.ID)
		}
		ids[o.ID] = "component"
	}
	for _, kind := range []struct {
		name  string
		list  []Component
		class string
	}{{"spout", t.Spouts, ShellSpoutClass}, {"bolt", t.Bolts, ShellBoltClass}} {
		for i := range kind.list {
			c := &kind.list[i]
			if c.ID == "" {
				return fmt.Errorf("%s #%d has no id", kind.name, i+1)
			}
			if _, dup := ids[c.ID]; dup {
				return fmt.Errorf("id %q is defined twice", c.ID)
			}
			ids[c.ID] = kind.name
			if err := t.shell(kind.name, kind.class, c); err != nil {
				return err
			}
		}
	}
	for i, s := range t.Streams {
		if err := t.checkStream(i, s, ids); err != nil {
			return err
		}
	}
	return nil
}

// shell reads a spout's or bolt's shell definition and checks its script.
func (t *Topology) shell(kind, class string, c *Component) error {
	if c.ClassName != class {
		if c.ClassName == "" {
			return fmt.Errorf("%s %q has no className (want %s)", kind, c.ID, class)
		}
		return fmt.Errorf("%s %q is the Java class %s: only multilang components (%s) are submitted without JVM code", kind, c.ID, c.ClassName, class)
	}
	if p := c.ParallelismOrDefault(); p < 1 {
		return fmt.Errorf("%s %q: parallelism %d is below 1", kind, c.ID, p)
	}
	if len(c.Properties) > 0 {
		return fmt.Errorf("%s %q: properties are not supported on shell components", kind, c.ID)
	}
	if len(c.ConstructorArgs) < 1 || len(c.ConstructorArgs) > 2 {
		return fmt.Errorf("%s %q: constructorArgs must be [command array] or [command array, output fields], got %d arguments", kind, c.ID, len(c.ConstructorArgs))
	}
	cmd, ok := stringList(c.ConstructorArgs[0])
	if !ok || len(cmd) == 0 {
		return fmt.Errorf("%s %q: the first constructor argument must be the command, a list of strings like [\"python3\", \"split.py\"]", kind, c.ID)
	}
	c.Command = cmd
	c.Outputs = map[string][]string{}
	if len(c.ConstructorArgs) == 2 {
		fields, ok := stringList(c.ConstructorArgs[1])
		if !ok {
			return fmt.Errorf("%s %q: the second constructor argument must be the output fields, a list of strings", kind, c.ID)
		}
		c.Outputs[DefaultStream] = fields
	}
	for _, m := range c.ConfigMethods {
		if err := c.configMethod(kind, m); err != nil {
			return err
		}
	}
	return t.checkCommand(kind, c)
}

// configMethod applies one of FluxShellSpout's/FluxShellBolt's
// configuration methods.
func (c *Component) configMethod(kind string, m Method) error {
	bad := func(want string) error {
		return fmt.Errorf("%s %q: configMethod %s takes %s", kind, c.ID, m.Name, want)
	}
	switch m.Name {
	case "setDefaultStream":
		if len(m.Args) != 1 {
			return bad("[output fields]")
		}
		fields, ok := stringList(m.Args[0])
		if !ok {
			return bad("[output fields]")
		}
		c.Outputs[DefaultStream] = fields
	case "setNamedStream":
		if len(m.Args) != 2 {
			return bad("[stream id, output fields]")
		}
		name, ok1 := m.Args[0].(string)
		fields, ok2 := stringList(m.Args[1])
		if !ok1 || !ok2 || name == "" {
			return bad("[stream id, output fields]")
		}
		c.Outputs[name] = fields
	case "addComponentConfig":
		if len(m.Args) != 2 {
			return bad("[key, value]")
		}
		key, ok := m.Args[0].(string)
		if !ok || key == "" {
			return bad("[key, value]")
		}
		if c.Conf == nil {
			c.Conf = map[string]any{}
		}
		c.Conf[key] = m.Args[1]
	default:
		return fmt.Errorf("%s %q: unknown configMethod %q (shell components take setDefaultStream, setNamedStream, addComponentConfig)", kind, c.ID, m.Name)
	}
	return nil
}

// checkCommand checks the command against the resources directory, where
// Storm runs it. Storm's ShellComponent carries an interpreter and one
// script, so the command has one or two elements: [interpreter, script]
// needs the script in resources; [program] is a program of resources,
// which must be executable, or one found on the workers' PATH.
func (t *Topology) checkCommand(kind string, c *Component) error {
	switch len(c.Command) {
	case 1:
		prog := c.Command[0]
		if !strings.Contains(prog, "/") {
			// A bare name is found on PATH, as ProcessBuilder does.
			if _, err := os.Stat(filepath.Join(t.Resources, prog)); err == nil {
				return fmt.Errorf("%s %q: command %q names a file of the resources directory: write it as \"./%s\" (a bare name is looked up on PATH)", kind, c.ID, prog, prog)
			}
			return nil
		}
		return t.checkScript(kind, c.ID, prog, true)
	case 2:
		if c.Command[0] == "" {
			return fmt.Errorf("%s %q: the command's interpreter is empty", kind, c.ID)
		}
		if strings.Contains(c.Command[0], "/") && !filepath.IsAbs(c.Command[0]) {
			if err := t.checkScript(kind, c.ID, c.Command[0], true); err != nil {
				return err
			}
		}
		return t.checkScript(kind, c.ID, c.Command[1], false)
	}
	return fmt.Errorf("%s %q: command %q has %d elements: Storm runs an interpreter and one script (give at most two, e.g. [\"python3\", \"split.py\"])", kind, c.ID, c.Command, len(c.Command))
}

// checkScript checks that name is a file of the resources directory (and
// executable, when exec).
func (t *Topology) checkScript(kind, id, name string, exec bool) error {
	if filepath.IsAbs(name) || strings.HasPrefix(filepath.Clean(name), "..") {
		return fmt.Errorf("%s %q: script %q is outside the resources directory %s", kind, id, name, t.Resources)
	}
	p := filepath.Join(t.Resources, name)
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return fmt.Errorf("%s %q: script %q not found in the resources directory %s", kind, id, name, t.Resources)
	case fi.IsDir():
		return fmt.Errorf("%s %q: script %q is a directory", kind, id, name)
	case exec && fi.Mode()&0o111 == 0:
		return fmt.Errorf("%s %q: script %q is not executable (chmod +x %s)", kind, id, name, p)
	}
	return nil
}

// checkStream checks one stream: its ends exist, the bolt at its end, the
// grouping and its fields against the source's declared streams.
func (t *Topology) checkStream(i int, s Stream, ids map[string]string) error {
	what := fmt.Sprintf("stream #%d", i+1)
	if s.Name != "" {
		what = fmt.Sprintf("stream %q", s.Name)
	}
	if s.From == "" || s.To == "" {
		return fmt.Errorf("%s needs from and to", what)
	}
	for _, end := range []string{s.From, s.To} {
		kind, ok := ids[end]
		if !ok {
			return fmt.Errorf("%s: component %q is not defined (spouts: %s; bolts: %s)", what, end, idList(t.Spouts), idList(t.Bolts))
		}
		if kind == "component" {
			return fmt.Errorf("%s: %q is an entry of components, not a spout or bolt", what, end)
		}
	}
	if ids[s.To] != "bolt" {
		return fmt.Errorf("%s: %q is a spout: streams go to bolts", what, s.To)
	}
	g := s.Grouping
	switch g.Type {
	case GroupShuffle, GroupAll, GroupGlobal, GroupLocalOrShuffle, GroupDirect, GroupNone:
	case GroupFields:
		if len(g.Args) == 0 {
			return fmt.Errorf("%s: a FIELDS grouping needs the fields as args", what)
		}
	case GroupCustom:
		return fmt.Errorf("%s: a CUSTOM grouping needs a Java class: use SHUFFLE, FIELDS, ALL, GLOBAL, LOCAL_OR_SHUFFLE, DIRECT or NONE", what)
	case "":
		return fmt.Errorf("%s has no grouping type", what)
	default:
		return fmt.Errorf("%s: unknown grouping %q (known: SHUFFLE, FIELDS, ALL, GLOBAL, LOCAL_OR_SHUFFLE, DIRECT, NONE)", what, g.Type)
	}
	stream := s.StreamID()
	from := t.component(s.From)
	fields, ok := from.Outputs[stream]
	if !ok {
		return fmt.Errorf("%s: %q declares no stream %q (give its output fields in constructorArgs or setNamedStream)", what, s.From, stream)
	}
	for _, f := range g.Args {
		if !contains(fields, f) {
			return fmt.Errorf("%s: grouping field %q is not an output field of %q's stream %q %v", what, f, s.From, stream, fields)
		}
	}
	return nil
}

// StreamID is the source stream a Stream subscribes to.
func (s Stream) StreamID() string {
	if s.Grouping.StreamID == "" {
		return DefaultStream
	}
	return s.Grouping.StreamID
}

func (t *Topology) component(id string) *Component {
	for i := range t.Spouts {
		if t.Spouts[i].ID == id {
			return &t.Spouts[i]
		}
	}
	for i := range t.Bolts {
		if t.Bolts[i].ID == id {
			return &t.Bolts[i]
		}
	}
	return nil
}

// Scripts are the files of the resources directory, relative to it.
func (t *Topology) Scripts() ([]string, error) {
	var out []string
	err := filepath.WalkDir(t.Resources, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(t.Resources, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out, err
}

func idList(cs []Component) string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// stringList reads a YAML list of strings.
func stringList(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
