package containerinit

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestConfigRoundTrips(t *testing.T) {
	uid := uint32(1000)
	for _, c := range []Config{
		{Path: "/bin/sh", Args: []string{"sh", "-c", "echo 'a b'\n"}, Env: []string{"A=1", "EMPTY="},
			Sandbox: "/tmp/s", SandboxInTmp: true, Tmp: "/tmp/s/tmp", AgentMountNS: "mnt:[4026531841]",
			Keep: []string{"/tmp/w/volumes/roles/r/a", "/tmp/w/volumes/roles/r/b"}, ReadOnly: []string{"/tmp/w/volumes/roles/r/b", "/srv/v"}},
		{Path: "/bin/true", UID: &uid, GID: 100, Groups: []uint32{100, 27}, Args: []string{""}},
		{Path: "/bin/true", ExitFile: "/s/.x", Cgroup: []string{"/sys/fs/cgroup/cpu/agora/c/tasks", "/sys/fs/cgroup/memory/agora/c/tasks"}},
	} {
		enc := c.Encode()
		got, err := decodeConfig(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip: got %+v, want %+v", got, c)
		}
		if len(enc) != cap(enc) {
			t.Errorf("Encode: %d bytes in a buffer of %d, want one of their exact size", len(enc), cap(enc))
		}
		// What the agent sends is the frame of the encoding, in one buffer.
		framed, want := c.EncodeFramed(), Frame(enc)
		if string(framed) != string(want) || len(framed) != cap(framed) {
			t.Errorf("EncodeFramed: %q (capacity %d), want %q", framed, cap(framed), want)
		}
	}
	for _, bad := range []string{"", "p/bin/sh", "x1\x00", "u-1\x00p/bin/true\x00", "s/tmp\x00"} {
		if _, err := decodeConfig([]byte(bad)); err == nil {
			t.Errorf("decodeConfig(%q) accepted", bad)
		}
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	w := uint32(0x0900)
	for _, m := range []Message{{Ready: true}, {Ready: true, Joined: true}, {Pid: 42}, {Error: "start /x: no such file\nor directory"}, {Status: &w}} {
		line := string(m.encode())
		if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
			t.Fatalf("encoded %+v as %q", m, line)
		}
		got, err := ParseMessage(strings.TrimSuffix(line, "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Error != "" {
			m.Error = strings.ReplaceAll(m.Error, "\n", " ")
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("got %+v, want %+v", got, m)
		}
	}
	for _, bad := range []string{"", "pid", "pid x", "pid 0", "status -1", "hello world", "ready x", "joined"} {
		if _, err := ParseMessage(bad); err == nil {
			t.Errorf("ParseMessage(%q) accepted", bad)
		}
	}
}

// The init must never mount over the agent's /proc or /tmp: it checks
// that it has a mount namespace and a pid namespace of its own. (Checked
// without mounting anything: this test runs in the machine's namespaces.)
func TestInitRefusesToRunInTheAgentsNamespaces(t *testing.T) {
	own, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Skip(err)
	}
	if err := isolated(own); err == nil || !strings.Contains(err.Error(), "mount namespace") {
		t.Errorf("isolated(own mount namespace) = %v", err)
	}
	if err := isolated(""); err == nil {
		t.Error("isolated without the agent's namespace accepted")
	}
	if err := isolated("mnt:[1]"); err == nil || !strings.Contains(err.Error(), "pid 1") {
		t.Errorf("isolated as pid %d = %v", os.Getpid(), err)
	}
}

func TestFramedConfigurationsOfAnySizeAreRead(t *testing.T) {
	for _, size := range []int{0, 10, 200 << 10} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		want := Config{Path: "/bin/true", Env: []string{"BIG=" + strings.Repeat("x", size)}}
		go func() { w.Write(append(Frame(want.Encode()), Go)); w.Close() }()
		b, err := readFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeConfig(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %d bytes: %v", len(b), err)
		}
		var g [1]byte
		if n, _ := r.Read(g[:]); n != 1 || g[0] != Go {
			t.Fatalf("the byte after the frame is %q", g[:n])
		}
		r.Close()
	}
	for _, bad := range []string{"", "12", "x\n", "-1\n", "5\nabc"} {
		r, w, _ := os.Pipe()
		go func() { w.Write([]byte(bad)); w.Close() }()
		if _, err := readFrame(r); err == nil {
			t.Errorf("readFrame(%q) accepted", bad)
		}
		r.Close()
	}
}

// The exit-status file is written whole, with its newline, and no
// temporary file is left; a directory it cannot write to is an error.
func TestWriteExitFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/status"
	if err := writeExitFile(path, 3<<8); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "768\n" {
		t.Fatalf("exit file = %q, %v", b, err)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	if err := writeExitFile(dir+"/missing/status", 0); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}

func TestFramesHaveAFixedWidthLength(t *testing.T) {
	if got := string(Frame([]byte("abc"))); got != "0000000003\nabc" {
		t.Fatalf("Frame(abc) = %q", got)
	}
	for _, bad := range []string{"3\nabc", "000000000x\nabc", "0000000003 abc", "0000000000\n"} {
		r, w, _ := os.Pipe()
		go func() { w.Write([]byte(bad)); w.Close() }()
		if _, err := readFrame(r); err == nil {
			t.Errorf("readFrame(%q) accepted", bad)
		}
		r.Close()
	}
}
