package agent

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

type fileEntry struct {
	Path  string  `json:"path"`
	Nlink int     `json:"nlink"`
	Size  int64   `json:"size"`
	Mtime float64 `json:"mtime"`
	Mode  string  `json:"mode"`
	UID   string  `json:"uid"`
	GID   string  `json:"gid"`
}

type readAnswer struct {
	Data   string `json:"data"`
	Offset int64  `json:"offset"`
}

// sandboxWith runs a task that writes stdout and leaves a symlink to
// target in its sandbox, and returns the sandbox.
func sandboxWith(t *testing.T, fm *fakeMaster, ta *testAgent, stdout string, links map[string]string) string {
	t.Helper()
	script := "printf '" + stdout + "'"
	for name, target := range links {
		script += "; ln -s " + target + " " + name
	}
	run(fm, shellTask("files", script))
	ups := fm.expectStates(t, "files", mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED)
	return sandboxOf(ta.Agent, "files", ups[1])
}

func TestFilesEndpointsServeSandboxes(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	sandbox := sandboxWith(t, fm, ta, "0123456789", map[string]string{"inside": "stdout"})

	var listing []fileEntry
	getJSON(t, ta.Agent, "/files/browse?path="+url.QueryEscape(sandbox), &listing)
	byName := map[string]fileEntry{}
	for _, e := range listing {
		byName[filepath.Base(e.Path)] = e
	}
	out, ok := byName["stdout"]
	if !ok || out.Path != filepath.Join(sandbox, "stdout") || out.Size != 10 || out.Mode != "-rw-r--r--" ||
		out.Nlink != 1 || out.Mtime <= 0 || out.UID == "" || out.GID == "" {
		t.Fatalf("stdout entry = %+v (listing %+v)", out, listing)
	}
	if _, ok := byName["stderr"]; !ok {
		t.Errorf("no stderr in %+v", listing)
	}
	if m := byName["inside"].Mode; !strings.HasPrefix(m, "l") {
		t.Errorf("symlink mode = %q", m)
	}

	read := func(query string) readAnswer {
		var r readAnswer
		getJSON(t, ta.Agent, "/files/read?path="+url.QueryEscape(filepath.Join(sandbox, "stdout"))+query, &r)
		return r
	}
	if r := read(""); r != (readAnswer{"0123456789", 0}) {
		t.Errorf("read whole file = %+v", r)
	}
	if r := read("&offset=3&length=4"); r != (readAnswer{"3456", 3}) {
		t.Errorf("read offset 3 length 4 = %+v", r)
	}
	if r := read("&offset=-1"); r != (readAnswer{"", 10}) {
		t.Errorf("read offset -1 = %+v, want the size as offset", r)
	}
	if r := read("&offset=99"); r != (readAnswer{"", 10}) {
		t.Errorf("read past the end = %+v", r)
	}
	// A symlink that stays inside the sandboxes is followed.
	var r readAnswer
	getJSON(t, ta.Agent, "/files/read?path="+url.QueryEscape(filepath.Join(sandbox, "inside")), &r)
	if r.Data != "0123456789" {
		t.Errorf("read through an inside symlink = %+v", r)
	}
}

func TestFilesEndpointsStayInsideTheSandboxes(t *testing.T) {
	fm := newFakeMaster(t)
	ta, _ := startRegistered(t, fm, testConfig(t, fm, ""))
	sandbox := sandboxWith(t, fm, ta, "x", map[string]string{"etc": "/etc", "passwd": "/etc/passwd", "meta": "../../../../../../../../meta"})
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Skip("no /etc/passwd to try to escape to")
	}
	for _, c := range []struct {
		endpoint, path string
		want           int
	}{
		{"browse", sandbox + "/../../../../../../../..", http.StatusForbidden},
		{"read", sandbox + "/../../../../../../../../etc/passwd", http.StatusForbidden},
		{"read", "/etc/passwd", http.StatusForbidden},
		{"browse", "/", http.StatusForbidden},
		{"browse", ta.WorkDir() + "/meta", http.StatusForbidden},
		{"browse", filepath.Join(sandbox, "etc"), http.StatusForbidden},
		{"read", filepath.Join(sandbox, "etc", "passwd"), http.StatusForbidden},
		{"read", filepath.Join(sandbox, "passwd"), http.StatusForbidden},
		{"browse", filepath.Join(sandbox, "meta"), http.StatusForbidden},
		{"read", "stdout", http.StatusBadRequest},
		{"read", "", http.StatusBadRequest},
		{"read", sandbox, http.StatusBadRequest},
		{"read", filepath.Join(sandbox, "nope"), http.StatusNotFound},
		{"browse", filepath.Join(sandbox, "nope"), http.StatusNotFound},
	} {
		code, body := get(t, ta.Agent, "/files/"+c.endpoint+"?path="+url.QueryEscape(c.path))
		if code != c.want {
			t.Errorf("%s %q: %d %s, want %d", c.endpoint, c.path, code, body, c.want)
		}
		if strings.Contains(string(body), "root:") {
			t.Errorf("%s %q leaked /etc/passwd", c.endpoint, c.path)
		}
	}
	resp, err := http.Post("http://"+ta.Addr()+"/files/read?path="+url.QueryEscape(filepath.Join(sandbox, "stdout")), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /files/read: %d, want 405", resp.StatusCode)
	}
}
