package fs

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/agora-cluster/agora/cluster/clustertest"
)

// noHadoopConf makes the tests independent of the machine's Hadoop setup.
func noHadoopConf(t *testing.T) {
	t.Setenv("HADOOP_CONF_DIR", "")
	t.Setenv("HADOOP_HOME", "")
	t.Setenv("HADOOP_USER_NAME", "agora-test")
}

// closedAddr returns a loopback address that refuses connections (its
// port held until the test ends, so nothing else takes it).
func closedAddr(t *testing.T) string { return clustertest.RefusedAddr(t) }

func TestHDFSNamenodeNotListeningNamesTheAddress(t *testing.T) {
	noHadoopConf(t)
	addr := closedAddr(t)
	_, _, err := Lookup("hdfs://"+addr+"/user/agora/in", 0)
	if err == nil {
		t.Fatal("lookup with no namenode listening succeeded")
	}
	t.Log(err)
	for _, want := range []string{"hdfs://" + addr + "/user/agora/in", "namenode " + addr, "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestHDFSNamenodeThatHangsUpGivesAnErrorNamingIt(t *testing.T) {
	noHadoopConf(t)
	// Something listens but is no namenode: it reads the handshake and
	// hangs up. The client's handshake needs no reply, so the first call
	// is where it fails.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			c.Read(buf)
			c.Close()
		}
	}()
	fsys, p, err := Lookup("hdfs://"+l.Addr().String()+"/in/a.txt", 0)
	if err != nil {
		// Also acceptable: the handshake itself failed. It must say where.
		if !strings.Contains(err.Error(), l.Addr().String()) {
			t.Fatalf("error %q does not name the namenode", err)
		}
		return
	}
	_, err = fsys.Stat(p)
	if err == nil {
		t.Fatal("stat against a server that hangs up succeeded")
	}
	t.Log(err)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a broken namenode must not look like a missing file: %v", err)
	}
	if !strings.Contains(err.Error(), "hdfs://"+l.Addr().String()+"/in/a.txt") {
		t.Errorf("error %q does not name the file and namenode", err)
	}
	if ok, err := Exists(fsys, p); ok || err == nil {
		t.Errorf("Exists against a broken namenode = %v, %v; want an error", ok, err)
	}
}

func TestHDFSMalformedURLs(t *testing.T) {
	noHadoopConf(t)
	for _, tc := range []struct{ path, want string }{
		{"hdfs:///user/agora/in", "names no namenode"},
		{"hdfs://nn.example.com:http-not-a-port/in", "bad port"},
		{"hdfs://nn.example.com:99999/in", "bad port"},
		{"hdfs://:8020/in", "has no host"},
		{"hdfs://alice@nn.example.com/in", "want HOST[:PORT]"},
	} {
		_, _, err := Lookup(tc.path, 0)
		t.Log(err)
		if !errors.Is(err, ErrBadHDFSPath) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: error %v, want ErrBadHDFSPath saying %q and naming the path", tc.path, err, tc.want)
		}
	}
}

func TestHDFSNamenodeFromDefaultFSAndHadoopConf(t *testing.T) {
	noHadoopConf(t)
	// The job's fs.defaultFS gives hdfs:/// its namenode.
	addr := closedAddr(t)
	_, _, err := ResolverWith(0, "hdfs://"+addr)("hdfs:///user/agora/in")
	if err == nil || !strings.Contains(err.Error(), "namenode "+addr) {
		t.Errorf("fs.defaultFS: error %v, want one naming namenode %s", err, addr)
	}
	// A default of another scheme does not apply.
	_, _, err = ResolverWith(0, "file:///")("hdfs:///user/agora/in")
	if !errors.Is(err, ErrBadHDFSPath) {
		t.Errorf("file:/// default: error %v, want ErrBadHDFSPath", err)
	}
	// Paths without a scheme stay local whatever the default.
	if fsys, p, err := ResolverWith(0, "hdfs://"+addr)("/tmp/x"); err != nil || p != "/tmp/x" || reflect.TypeOf(fsys) != reflect.TypeOf(Local{}) {
		t.Errorf("bare path with an hdfs default: %T %s %v", fsys, p, err)
	}

	// Without a default, HADOOP_CONF_DIR's core-site.xml names it.
	dir := t.TempDir()
	addr2 := closedAddr(t)
	os.WriteFile(filepath.Join(dir, "core-site.xml"), []byte(`<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://`+addr2+`</value></property>
</configuration>`), 0o644)
	t.Setenv("HADOOP_CONF_DIR", dir)
	_, _, err = Lookup("hdfs:///user/agora/in", 0)
	if err == nil || !strings.Contains(err.Error(), "namenode "+addr2) {
		t.Errorf("core-site.xml: error %v, want one naming namenode %s", err, addr2)
	}

	// Kerberos is refused up front, not half-way through a job.
	os.WriteFile(filepath.Join(dir, "core-site.xml"), []byte(`<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://`+addr2+`</value></property>
  <property><name>hadoop.security.authentication</name><value>kerberos</value></property>
</configuration>`), 0o644)
	_, _, err = Lookup("hdfs:///user/agora/in", 0)
	if err == nil || !strings.Contains(err.Error(), "Kerberos") {
		t.Errorf("kerberos: error %v", err)
	}
}

func TestHDFSNamenodesOfAuthority(t *testing.T) {
	hc := hadoopconf.HadoopConf{
		"dfs.ha.namenodes.prod":               "nn1, nn2",
		"dfs.namenode.rpc-address.prod.nn1":   "nn1.example.com:8020",
		"dfs.namenode.rpc-address.prod.nn2":   "nn2.example.com:8020",
		"dfs.ha.namenodes.broken":             "nn1",
		"dfs.namenode.rpc-address.other.nn1":  "x:1",
		"fs.defaultFS":                        "hdfs://prod",
		"dfs.namenode.rpc-address.other.nn2":  "x:2",
		"dfs.namenode.http-address.prod.nn1":  "nn1.example.com:9870",
		"dfs.client.use.datanode.hostname":    "false",
		"dfs.namenode.kerberos.principal":     "",
		"hadoop.security.authentication":      "simple",
		"dfs.namenode.rpc-address.prod.extra": "ignored:1",
	}
	for _, tc := range []struct {
		authority string
		want      []string
	}{
		{"nn.example.com:9000", []string{"nn.example.com:9000"}},
		{"nn.example.com", []string{"nn.example.com:8020"}},
		{"[::1]:8020", []string{"[::1]:8020"}},
		{"prod", []string{"nn1.example.com:8020", "nn2.example.com:8020"}},
	} {
		got, err := namenodes(tc.authority, hc)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("namenodes(%q) = %v, %v; want %v", tc.authority, got, err, tc.want)
		}
	}
	if _, err := namenodes("broken", hc); !errors.Is(err, ErrBadHDFSPath) {
		t.Errorf("nameservice without addresses: %v", err)
	}
}

// TestHDFSNamenodeReachable guards the one place that reaches into the
// client library: its namenode connection and the protocol types by name.
func TestHDFSNamenodeReachable(t *testing.T) {
	f, ok := reflect.TypeOf(hdfs.Client{}).FieldByName("namenode")
	if !ok {
		t.Fatal("hdfs.Client has no namenode field: block locations cannot be read")
	}
	if !f.Type.Implements(reflect.TypeOf((*namenodeCaller)(nil)).Elem()) {
		t.Fatalf("hdfs.Client.namenode (%v) has no Execute(method, req, resp)", f.Type)
	}
	if _, err := namenodeOf(&hdfs.Client{}); !errors.Is(err, errNoBlockAPI) {
		t.Errorf("a client without a connection: %v", err)
	}
	req, err := hdfsMessage("hadoop.hdfs.GetBlockLocationsRequestProto")
	if err != nil {
		t.Fatal(err)
	}
	if err := setFields(req, map[protoreflect.Name]protoreflect.Value{
		"src": protoreflect.ValueOfString("/a"), "offset": protoreflect.ValueOfUint64(0), "length": protoreflect.ValueOfUint64(10),
	}); err != nil {
		t.Fatal(err)
	}
}

// A namenode's answer, built as the wire types, becomes blocks with
// hostnames and addresses.
func TestBlocksFromLocations(t *testing.T) {
	resp, err := hdfsMessage("hadoop.hdfs.GetBlockLocationsResponseProto")
	if err != nil {
		t.Fatal(err)
	}
	field := func(m protoreflect.Message, name protoreflect.Name) protoreflect.FieldDescriptor {
		fd := m.Descriptor().Fields().ByName(name)
		if fd == nil {
			t.Fatalf("%s has no field %s", m.Descriptor().FullName(), name)
		}
		return fd
	}
	locs := resp.Mutable(field(resp, "locations")).Message()
	list := locs.Mutable(field(locs, "blocks")).List()
	for i, replicas := range [][2]string{{"dn1.example.com", "10.0.0.1"}, {"dn2.example.com", "10.0.0.2"}} {
		lb := list.NewElement().Message()
		lb.Set(field(lb, "offset"), protoreflect.ValueOfUint64(uint64(i*128)))
		eb := lb.Mutable(field(lb, "b")).Message()
		eb.Set(field(eb, "numBytes"), protoreflect.ValueOfUint64(128-uint64(i)*28))
		dns := lb.Mutable(field(lb, "locs")).List()
		for _, r := range [][2]string{replicas, {"", "10.0.0.9"}} {
			dn := dns.NewElement().Message()
			id := dn.Mutable(field(dn, "id")).Message()
			id.Set(field(id, "hostName"), protoreflect.ValueOfString(r[0]))
			id.Set(field(id, "ipAddr"), protoreflect.ValueOfString(r[1]))
			dns.Append(protoreflect.ValueOfMessage(dn))
		}
		list.Append(protoreflect.ValueOfMessage(lb))
	}
	got, err := BlocksFromLocations(resp)
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{Offset: 0, Length: 128, Hosts: []string{"dn1.example.com", "10.0.0.9"}, Addrs: []string{"10.0.0.1", "10.0.0.9"}},
		{Offset: 128, Length: 100, Hosts: []string{"dn2.example.com", "10.0.0.9"}, Addrs: []string{"10.0.0.2", "10.0.0.9"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("blocks %+v, want %+v", got, want)
	}
}

func TestWalkGlobMatchesMemGlob(t *testing.T) {
	m := NewMem()
	for _, f := range []string{"/in/a/part-0", "/in/a/part-1", "/in/b/part-0", "/in/b/_SUCCESS", "/in/c.txt", "/other/x"} {
		WriteFile(m, f, []byte("x"))
	}
	for _, pattern := range []string{"/in/*", "/in/*/part-*", "/in/[ab]/part-0", "/in/c.txt", "/in/?.txt", "/nope/*", "/in/a/part-[", "/*/x"} {
		want, werr := m.Glob(pattern)
		got, gerr := walkGlob(m, pattern)
		if (werr != nil) != (gerr != nil) || !slices.Equal(got, want) {
			t.Errorf("glob %s: walk %v (%v), mem %v (%v)", pattern, got, gerr, want, werr)
		}
	}
}
