package conf

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestDeprecatedNamesReadAndWriteTheCurrentKey(t *testing.T) {
	c := New()
	c.Set("mapred.reduce.tasks", "7")
	if c.Get(NumReduces) != "7" || c.Get("mapred.reduce.tasks") != "7" {
		t.Fatalf("%v", c)
	}
	if _, old := c["mapred.reduce.tasks"]; old {
		t.Fatal("stored under the old name")
	}
	// A literal or decoded map with old names still reads.
	var d Conf
	json.Unmarshal([]byte(`{"mapred.map.max.attempts":"2"}`), &d)
	if n, _ := d.Int(MapMaxAttempts, 4); n != 2 || !d.IsSet(MapMaxAttempts) {
		t.Fatalf("decoded old name: %d", n)
	}
	// Defaults.
	if n, _ := New().Int(MapMaxAttempts, 0); n != 4 {
		t.Fatalf("default maxattempts %d", n)
	}
	if n, _ := (Conf{SplitMaxSize: "64m"}).Int(SplitMaxSize, 0); n != 64<<20 {
		t.Fatalf("size suffix: %d", n)
	}
	if _, err := (Conf{SlowStart: "lots"}).Float(SlowStart, 0); err == nil || !strings.Contains(err.Error(), SlowStart) {
		t.Fatalf("bad float: %v", err)
	}
}

func TestEnvUnderOldAndNewNames(t *testing.T) {
	c := Conf{}
	c.Set(MapInputFile, "/data/in.txt")
	c.Set("my.key-with.dots", "v")
	env := c.Env()
	for _, want := range []string{
		"mapreduce_map_input_file=/data/in.txt",
		"map_input_file=/data/in.txt",
		"my_key_with_dots=v",
		"mapreduce_map_maxattempts=4", // defaults too
		"mapred_map_max_attempts=4",
		"stream_map_output_field_separator=\t",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %q", want)
		}
	}
	c.Set(EnvTruncateLimit, "3")
	if !slices.Contains(c.Env(), "map_input_file=/da") {
		t.Error("values are not truncated to stream.jobconf.truncate.limit")
	}
}
