package distribution

import (
	"bytes"
	"slices"
	"testing"
)

func TestSiteXMLEscapesAndOrdersProperties(t *testing.T) {
	props := map[string]string{
		"mapred.job.tracker":      "jt.example.com:9001",
		"b.quotes":                `say "hi" & 'bye'`,
		"a.markup":                "<value>not an element</value> ]]> --> <!--",
		"c.multiline":             "line one\nline two\ttabbed",
		"d.unicode":               "café ☕",
		"e.empty":                 "",
		"f.shell":                 "$(touch /nonexistent) `id` ${HOME} \\n %s",
		"mapred.child.java.opts":  "-Xmx200m -Dx=<y>",
		"weird<name>&\"it's\"":    "ok",
		"mapred.local.dir":        SandboxPlaceholder + "/mapred/local",
		"fs.default.name":         "hdfs://nn:8020/",
		"mapred.mesos.slot.cpus":  "0.5",
		"agora.hadoop.executors.": "1",
	}
	data := SiteXML(props)
	got, names := parseSite(t, data)
	if len(got) != len(props) {
		t.Fatalf("parsed %d properties, want %d", len(got), len(props))
	}
	for k, v := range props {
		if got[k] != v {
			t.Errorf("property %q = %q, want %q", k, got[k], v)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("properties not in name order: %v", names)
	}
	if !bytes.Equal(data, SiteXML(props)) {
		t.Error("the same properties gave different bytes")
	}
	if !bytes.HasPrefix(data, []byte("<?xml version=\"1.0\"")) {
		t.Errorf("no XML declaration:\n%s", data)
	}
}

func TestSiteXMLEmpty(t *testing.T) {
	got, _ := parseSite(t, SiteXML(nil))
	if len(got) != 0 {
		t.Errorf("empty configuration parsed as %v", got)
	}
}
