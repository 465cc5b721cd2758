package zk

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	good := map[string]URL{
		"zk://h1:2181,h2:2182/agora":       {Servers: []string{"h1:2181", "h2:2182"}, Path: "/agora"},
		"zk://h1/mesos":                    {Servers: []string{"h1:2181"}, Path: "/mesos"},
		"zk://u:p%40ss@10.0.0.1:2181/a/b/": {Servers: []string{"10.0.0.1:2181"}, Path: "/a/b", User: "u", Password: "p@ss"},
		"zk://[::1]:2181,[::1]/x":          {Servers: []string{"[::1]:2181", "[::1]:2181"}, Path: "/x"},
	}
	for in, want := range good {
		got, err := ParseURL(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"http://h1:2181/agora": "must start with zk://",
		"zk://h1:2181":         "names no znode path",
		"zk://h1:2181/":        "names no znode path",
		"zk:///agora":          "names no ZooKeeper server",
		"zk://h1:2181,,h2/a":   "an empty server",
		"zk://h1:99999/a":      "port \"99999\"",
		"zk://h1:abc/a":        "port \"abc\"",
		"zk://:2181/a":         "has no host",
		"zk://user@h1:2181/a":  "user:password@",
		"zk://h1:2181/a//b":    "empty, '.' or '..' segment",
		"zk://h1:2181/a/../b":  "empty, '.' or '..' segment",
	}
	for in, want := range bad {
		_, err := ParseURL(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURL(%q) error = %v; want it to say %q", in, err, want)
		}
	}
	u, _ := ParseURL("zk://u:secret@h1:2181/agora")
	if s := u.String(); strings.Contains(s, "secret") || s != "zk://u:***@h1:2181/agora" {
		t.Errorf("String() = %q: must not show the password", s)
	}
}

func TestParseMembersKeepsMesosNamesOldestFirst(t *testing.T) {
	got := parseMembers([]string{"json.info_0000000012", "log_replicas", "info_0000000001", "json.info_0000000003", "json.info_x"})
	if len(got) != 2 || got[0].Name != "json.info_0000000003" || got[1].Seq != 12 {
		t.Fatalf("parseMembers = %+v; want json.info_0000000003 then json.info_0000000012, the rest ignored", got)
	}
}

func TestMemberAddress(t *testing.T) {
	cases := map[string]string{
		`{"ip":16777343,"port":5050,"hostname":"m1","address":{"hostname":"m1","ip":"10.0.0.5","port":5051}}`: "10.0.0.5:5051",
		`{"ip":16777343,"port":5050,"hostname":"m1"}`:                                                         "127.0.0.1:5050",
		`{"port":5050,"hostname":"m1"}`:                                                                       "m1:5050",
	}
	for data, want := range cases {
		got, err := Member{Name: "json.info_0000000001", Data: []byte(data)}.Address()
		if err != nil || got != want {
			t.Errorf("Address of %s = %q, %v; want %q", data, got, err, want)
		}
	}
	for _, data := range []string{`not json`, `{"hostname":"m1"}`, `{}`} {
		if _, err := (Member{Name: "json.info_0000000001", Data: []byte(data)}).Address(); err == nil {
			t.Errorf("Address of %s: no error", data)
		}
	}
}
