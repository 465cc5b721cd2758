// Package submit puts a Flux topology of multilang components on a real
// Storm without JVM code: the topology's scripts, with Storm's own
// storm.py, go into a jar's resources/ (where a worker runs shell
// components), the jar is uploaded to Nimbus, and submitTopology gets a
// StormTopology of shell components built from the Flux definition.
package submit

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/flux"
)

// StormPy is the multilang library's file name in resources/.
const StormPy = "storm.py"

// MultilangJar is where `agora dist install storm` keeps storm.py: the
// org.apache.storm:multilang-python jar in the home's lib/.
const MultilangJar = "lib/multilang-python-2.8.3.jar"

// Options are a submission's choices beyond the Flux file.
type Options struct {
	// Name overrides the topology's name.
	Name string
	// Conf are configuration keys over the file's config (-c key=value).
	Conf map[string]any
	// StormHome is a Storm home with the multilang-python jar, for
	// storm.py when the resources directory has none.
	StormHome string
}

// Prepared is a topology ready to submit: nothing has been sent.
type Prepared struct {
	Name     string
	Conf     string // the topology configuration, JSON
	Topology client.Topology
	Jar      []byte
}

// Prepare builds what Submit sends, refusing what Storm could not run.
func Prepare(t *flux.Topology, opts Options) (*Prepared, error) {
	name := t.Name
	if opts.Name != "" {
		name = opts.Name
	}
	if name == "" {
		return nil, errors.New("the topology has no name: give name: in the file or --name")
	}
	if strings.ContainsAny(name, "/.:\\") {
		return nil, fmt.Errorf("topology name %q: Storm refuses names with / . : or \\", name)
	}
	conf := map[string]any{}
	for k, v := range t.Config {
		conf[k] = v
	}
	for k, v := range opts.Conf {
		conf[k] = v
	}
	confJSON, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("topology %s: configuration: %w", name, err)
	}
	if err := runnableFromJar(t); err != nil {
		return nil, fmt.Errorf("topology %s: %w", name, err)
	}
	top, err := Thrift(t)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", name, err)
	}
	jar, err := Jar(t, opts.StormHome)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", name, err)
	}
	return &Prepared{Name: name, Conf: string(confJSON), Topology: top, Jar: jar}, nil
}

// runnableFromJar refuses a component whose program is a file of the
// resources directory (["./prog"], or ["./venv/bin/python", "x.py"]): a
// real Storm supervisor unpacks the jar's resources/ without file modes,
// so the worker could not execute it (error=13, Permission denied).
// Agora's native runtime runs such programs; on real Storm they go
// through an interpreter on the workers' PATH.
func runnableFromJar(t *flux.Topology) error {
	for _, set := range []struct {
		kind string
		cs   []flux.Component
	}{{"spout", t.Spouts}, {"bolt", t.Bolts}} {
		for _, c := range set.cs {
			if len(c.Command) == 0 {
				continue
			}
			if prog := c.Command[0]; strings.Contains(prog, "/") && !filepath.IsAbs(prog) {
				script := strings.TrimPrefix(prog, "./")
				if len(c.Command) > 1 {
					script = strings.Join(c.Command[1:], " ")
				}
				return fmt.Errorf("%s %q: command %q runs a program of the resources directory, which a Storm supervisor unpacks without its execute bit: "+
					"run it through an interpreter on the workers' PATH instead (e.g. [\"sh\", %q] or [\"python3\", %q])", set.kind, c.ID, c.Command, script, script)
			}
		}
	}
	return nil
}

// Submit uploads the jar and submits the topology. A topology of the same
// name already running is refused before anything is uploaded.
func (p *Prepared) Submit(ctx context.Context, c *client.Client) (string, error) {
	if _, ok, err := c.TopologyByName(ctx, p.Name); err != nil {
		return "", err
	} else if ok {
		return "", fmt.Errorf("topology %q is already running on Nimbus %s: kill it first or give another --name", p.Name, c.Addr())
	}
	loc, err := c.UploadJar(ctx, bytes.NewReader(p.Jar))
	if err != nil {
		return "", err
	}
	if err := c.Submit(ctx, p.Name, loc, p.Conf, p.Topology); err != nil {
		return "", err
	}
	s, ok, err := c.TopologyByName(ctx, p.Name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("topology %q was submitted but Nimbus does not list it", p.Name)
	}
	return s.ID, nil
}

// Thrift is the StormTopology of a Flux definition's shell components.
func Thrift(t *flux.Topology) (client.Topology, error) {
	out := client.Topology{Spouts: map[string]client.Component{}, Bolts: map[string]client.Component{}}
	// A stream some bolt takes with DIRECT grouping is declared direct.
	direct := map[client.StreamID]bool{}
	inputs := map[string][]client.Input{}
	for _, s := range t.Streams {
		from := client.StreamID{ComponentID: s.From, StreamID: s.StreamID()}
		g, err := grouping(s.Grouping)
		if err != nil {
			return client.Topology{}, fmt.Errorf("stream %s -> %s: %w", s.From, s.To, err)
		}
		if g.Kind == client.Direct {
			direct[from] = true
		}
		inputs[s.To] = append(inputs[s.To], client.Input{From: from, Grouping: g})
	}
	component := func(c flux.Component) (client.Component, error) {
		cc := client.Component{
			Shell:       client.ShellComponent{Command: c.Command[0]},
			Inputs:      inputs[c.ID],
			Streams:     map[string]client.StreamInfo{},
			Parallelism: int32(c.ParallelismOrDefault()),
		}
		if len(c.Command) > 1 {
			cc.Shell.Script = c.Command[1]
		}
		for id, fields := range c.Outputs {
			cc.Streams[id] = client.StreamInfo{OutputFields: fields,
				Direct: direct[client.StreamID{ComponentID: c.ID, StreamID: id}]}
		}
		if len(c.Conf) > 0 {
			b, err := json.Marshal(c.Conf)
			if err != nil {
				return cc, fmt.Errorf("%s: component configuration: %w", c.ID, err)
			}
			cc.JSONConf = string(b)
		}
		return cc, nil
	}
	for _, s := range t.Spouts {
		c, err := component(s)
		if err != nil {
			return client.Topology{}, err
		}
		out.Spouts[s.ID] = c
	}
	for _, b := range t.Bolts {
		c, err := component(b)
		if err != nil {
			return client.Topology{}, err
		}
		out.Bolts[b.ID] = c
	}
	return out, nil
}

func grouping(g flux.Grouping) (client.Grouping, error) {
	switch g.Type {
	case flux.GroupShuffle:
		return client.Grouping{Kind: client.Shuffle}, nil
	case flux.GroupFields:
		return client.Grouping{Kind: client.Fields, Fields: g.Args}, nil
	case flux.GroupAll:
		return client.Grouping{Kind: client.All}, nil
	case flux.GroupGlobal:
		return client.Grouping{Kind: client.Global}, nil
	case flux.GroupLocalOrShuffle:
		return client.Grouping{Kind: client.LocalOrShuffle}, nil
	case flux.GroupDirect:
		return client.Grouping{Kind: client.Direct}, nil
	case flux.GroupNone:
		return client.Grouping{Kind: client.None}, nil
	}
	return client.Grouping{}, fmt.Errorf("unknown grouping %q", g.Type)
}

// Jar is the topology jar: resources/ holding every file of the
// topology's resources directory (modes kept) and storm.py, from the
// directory itself or else from stormHome's multilang-python jar.
func Jar(t *flux.Topology, stormHome string) ([]byte, error) {
	files, err := t.Scripts()
	if err != nil {
		return nil, fmt.Errorf("read the resources directory: %w", err)
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	add := func(name string, mode os.FileMode, data []byte) error {
		h := &zip.FileHeader{Name: "resources/" + name, Method: zip.Deflate}
		h.SetMode(mode)
		w, err := z.CreateHeader(h)
		if err == nil {
			_, err = w.Write(data)
		}
		return err
	}
	sort.Strings(files)
	hasStormPy := false
	for _, f := range files {
		p := filepath.Join(t.Resources, filepath.FromSlash(f))
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if err := add(f, fi.Mode().Perm(), data); err != nil {
			return nil, err
		}
		hasStormPy = hasStormPy || f == StormPy
	}
	if !hasStormPy {
		py, err := MultilangPython(stormHome)
		if err != nil {
			return nil, err
		}
		if err := add(StormPy, 0o644, py); err != nil {
			return nil, err
		}
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MultilangPython reads Storm's storm.py from the multilang-python jar of
// a Storm home.
func MultilangPython(home string) ([]byte, error) {
	if home == "" {
		return nil, errors.New("storm.py is needed and no Storm home was given (agora dist install storm; --storm_home)")
	}
	jar := filepath.Join(home, filepath.FromSlash(MultilangJar))
	z, err := zip.OpenReader(jar)
	if err != nil {
		return nil, fmt.Errorf("storm.py: %w (agora dist install storm puts it there)", err)
	}
	defer z.Close()
	for _, f := range z.File {
		if f.Name == "resources/"+StormPy {
			r, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("storm.py in %s: %w", jar, err)
			}
			defer r.Close()
			return io.ReadAll(r)
		}
	}
	return nil, fmt.Errorf("%s holds no resources/%s", jar, StormPy)
}
