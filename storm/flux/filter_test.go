package flux

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFilterSubstitutesAsFlux(t *testing.T) {
	env := map[string]string{"WORKERS": "3", "EMPTY": ""}
	f := Filter{
		Properties: map[string]string{"name": "words", "pending": "64", "cmd": `["python3", "split.py"]`, "ENV-WORKERS": "from the file"},
		Env:        true,
		Getenv:     func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}
	for _, tc := range []struct{ in, want string }{
		{"name: ${name}", "name: words"},
		{"name: \"${name}\"\r", "name: \"words\"\r"}, // the line end is kept
		{"topology.workers: ${ENV-WORKERS}", "topology.workers: 3"},
		{"x: ${ENV-EMPTY}", "x: "},
		{"- [\"${cmd[0]}\", \"${cmd[1]}\"]", "- [\"${cmd[0]}\", \"split.py\"]"}, // one substitution a line: the last
		{"a: ${name}-${name}", "a: words-words"},                                // every occurrence of that variable
		{"a: ${unknown}", "a: ${unknown}"},                                      // left as it is
		{"a: ${ENV-UNSET}", "a: ${ENV-UNSET}"},
		{"a: ${name} ${unknown}", "a: ${name} ${unknown}"}, // the last is unknown: the line is left
		{"a: $name", "a: $name"},
		{"a: ${}", "a: ${}"},
	} {
		got, err := f.Apply([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("%q → %q (%v), want %q", tc.in, got, err, tc.want)
		}
	}

	// Without --env-filter, ${ENV-X} is a property like any other.
	f.Env = false
	if got, _ := f.Apply([]byte("w: ${ENV-WORKERS}\n")); string(got) != "w: from the file\n" {
		t.Errorf("no env filter: %q", got)
	}
	// Without --filter, ${key} stays (Flux itself fails on it).
	if got, err := (Filter{}).Apply([]byte("n: ${name}\n")); err != nil || string(got) != "n: ${name}\n" {
		t.Errorf("no filter: %q %v", got, err)
	}
	// A list element that is not there is an error naming the line.
	for _, in := range []string{"a\nb: ${cmd[2]}", "a\nb: ${name[0]}"} {
		if _, err := f.Apply([]byte(in)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v, want an error naming line 2", in, err)
		}
	}
}

func TestParseProperties(t *testing.T) {
	got, err := ParseProperties([]byte(`# a comment
! another
name=words
spaced   =   a value with  spaces
colon:x
white y z
  indented = yes
long = one, \
       two
key\ with\ space = v
tab = a\tb
uni = \u00e9t\u00e9
empty
name = later wins
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name": "later wins", "spaced": "a value with  spaces", "colon": "x", "white": "y z",
		"indented": "yes", "long": "one, two", "key with space": "v", "tab": "a\tb", "uni": "été", "empty": ""}
	if len(got) != len(want) {
		t.Errorf("got %d properties %q, want %d", len(got), got, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q = %q, want %q", k, got[k], v)
		}
	}
	if _, err := ParseProperties([]byte("bad = \\u12\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a bad escape: %v", err)
	}
	if _, err := ReadProperties(filepath.Join(t.TempDir(), "none.properties")); err == nil || !strings.Contains(err.Error(), "none.properties") {
		t.Errorf("a missing file: %v", err)
	}
}

// The filter applies before the topology is checked: a parallelism from
// the properties file is checked as a number, a script name from the
// environment must exist.
func TestLoadFilteredChecksTheResult(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "spout.py"), []byte("#!/usr/bin/env python3\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "bolt.py"), []byte("#!/usr/bin/env python3\n"), 0o755)
	yaml := `name: "${name}"
spouts:
  - id: "s"
    className: "org.apache.storm.flux.wrappers.spouts.FluxShellSpout"
    constructorArgs:
      - ["python3", "${ENV-SPOUT}"]
      - ["x"]
    parallelism: ${spouts}
bolts:
  - id: "b"
    className: "org.apache.storm.flux.wrappers.bolts.FluxShellBolt"
    constructorArgs:
      - ["python3", "bolt.py"]
    parallelism: 1
streams:
  - from: "s"
    to: "b"
    grouping:
      type: SHUFFLE
`
	path := filepath.Join(dir, "t.yaml")
	os.WriteFile(path, []byte(yaml), 0o644)
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) { return v, k == "SPOUT" }
	}
	top, data, err := LoadFiltered(path, "", Filter{Properties: map[string]string{"name": "filtered", "spouts": "2"}, Env: true, Getenv: env("spout.py")})
	if err != nil {
		t.Fatal(err)
	}
	if top.Name != "filtered" || top.Spouts[0].ParallelismOrDefault() != 2 || top.Spouts[0].Command[1] != "spout.py" {
		t.Errorf("topology %q, spout %v ×%d", top.Name, top.Spouts[0].Command, top.Spouts[0].ParallelismOrDefault())
	}
	if strings.Contains(string(data), "${") {
		t.Errorf("the substituted text still has variables:\n%s", data)
	}
	// Unsubstituted, the parallelism is not a number.
	if _, _, err := LoadFiltered(path, "", Filter{Env: true, Getenv: env("spout.py")}); err == nil || !strings.Contains(err.Error(), "${spouts}") {
		t.Errorf("no properties: %v, want the YAML error naming ${spouts}", err)
	}
	// A script from the environment that is not there is refused by name.
	if _, _, err := LoadFiltered(path, "", Filter{Properties: map[string]string{"spouts": "1"}, Env: true, Getenv: env("nosuch.py")}); err == nil || !strings.Contains(err.Error(), "nosuch.py") {
		t.Errorf("a missing script: %v", err)
	}
}
