package fs

import (
	"encoding/binary"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fakeNamenode answers Hadoop IPC calls on a real socket with canned
// responses (text-format protobufs of the registered wire types). It is
// no HDFS: it checks that Blocks' call goes over the client's own
// connection and comes back as blocks.
type fakeNamenode struct {
	t         *testing.T
	l         net.Listener
	responses map[string]string // method → response in text format

	mu    sync.Mutex
	calls []string
	reqs  map[string]protoreflect.Message
}

var responseTypes = map[string]protoreflect.FullName{
	"getFileInfo":       "hadoop.hdfs.GetFileInfoResponseProto",
	"getBlockLocations": "hadoop.hdfs.GetBlockLocationsResponseProto",
}

var requestTypes = map[string]protoreflect.FullName{
	"getFileInfo":       "hadoop.hdfs.GetFileInfoRequestProto",
	"getBlockLocations": "hadoop.hdfs.GetBlockLocationsRequestProto",
}

func startFakeNamenode(t *testing.T, responses map[string]string) *fakeNamenode {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nn := &fakeNamenode{t: t, l: l, responses: responses, reqs: map[string]protoreflect.Message{}}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go nn.serve(c)
		}
	}()
	return nn
}

func readPacket(r io.Reader) ([]byte, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

func (nn *fakeNamenode) serve(c net.Conn) {
	defer c.Close()
	hdr := make([]byte, 7) // "hrpc", version, service class, auth
	if _, err := io.ReadFull(c, hdr); err != nil || string(hdr[:4]) != "hrpc" {
		return
	}
	if _, err := readPacket(c); err != nil { // connection context
		return
	}
	for {
		pkt, err := readPacket(c)
		if err != nil {
			return
		}
		var parts [][]byte
		for len(pkt) > 0 {
			m, n := protowire.ConsumeBytes(pkt)
			if n < 0 {
				return
			}
			parts, pkt = append(parts, m), pkt[n:]
		}
		if len(parts) != 3 {
			return
		}
		rrh := mustMessage(nn.t, "hadoop.common.RpcRequestHeaderProto", "")
		rh := mustMessage(nn.t, "hadoop.common.RequestHeaderProto", "")
		proto.Unmarshal(parts[0], rrh.Interface())
		proto.Unmarshal(parts[1], rh.Interface())
		callID := int32(get(rrh, "callId").Int())
		method := get(rh, "methodName").String()
		nn.mu.Lock()
		nn.calls = append(nn.calls, method)
		if rt, ok := requestTypes[method]; ok {
			req := mustMessage(nn.t, rt, "")
			proto.Unmarshal(parts[2], req.Interface())
			nn.reqs[method] = req
		}
		nn.mu.Unlock()

		var header, body protoreflect.Message
		if text, ok := nn.responses[method]; ok {
			header = mustMessage(nn.t, "hadoop.common.RpcResponseHeaderProto", "status: SUCCESS")
			body = mustMessage(nn.t, responseTypes[method], text)
		} else {
			header = mustMessage(nn.t, "hadoop.common.RpcResponseHeaderProto",
				`status: ERROR exceptionClassName: "java.lang.UnsupportedOperationException" errorMsg: "fake namenode"`)
		}
		header.Set(header.Descriptor().Fields().ByName("callId"), protoreflect.ValueOfUint32(uint32(callID)))
		var out []byte
		for _, m := range []protoreflect.Message{header, body} {
			if m == nil {
				continue
			}
			b, err := proto.Marshal(m.Interface())
			if err != nil {
				nn.t.Errorf("marshal %s: %v", m.Descriptor().FullName(), err)
				return
			}
			out = protowire.AppendBytes(out, b)
		}
		if _, err := c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(out)))); err != nil {
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func mustMessage(t *testing.T, name protoreflect.FullName, text string) protoreflect.Message {
	m, err := hdfsMessage(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := (prototext.UnmarshalOptions{AllowPartial: true}).Unmarshal([]byte(text), m.Interface()); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func TestHDFSBlocksOverTheClientsNamenodeConnection(t *testing.T) {
	noHadoopConf(t)
	nn := startFakeNamenode(t, map[string]string{
		"getFileInfo": `fs { fileType: IS_FILE path: "" length: 300 permission { perm: 420 }
			owner: "agora" group: "agora" modification_time: 0 access_time: 0 blocksize: 200 }`,
		"getBlockLocations": `locations { fileLength: 300 underConstruction: false isLastBlockComplete: true
			blocks { b { poolId: "p" blockId: 1 generationStamp: 1 numBytes: 200 } offset: 0 corrupt: false
				blockToken { identifier: "" password: "" kind: "" service: "" }
				locs { id { ipAddr: "10.0.0.1" hostName: "dn1.example.com" datanodeUuid: "u1" xferPort: 50010 infoPort: 50075 ipcPort: 50020 } }
				locs { id { ipAddr: "10.0.0.2" hostName: "dn2.example.com" datanodeUuid: "u2" xferPort: 50010 infoPort: 50075 ipcPort: 50020 } } }
			blocks { b { poolId: "p" blockId: 2 generationStamp: 1 numBytes: 100 } offset: 200 corrupt: false
				blockToken { identifier: "" password: "" kind: "" service: "" }
				locs { id { ipAddr: "10.0.0.3" hostName: "dn3.example.com" datanodeUuid: "u3" xferPort: 50010 infoPort: 50075 ipcPort: 50020 } } } }`,
	})
	fsys, p, err := Lookup("hdfs://"+nn.l.Addr().String()+"/data/b.txt", 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := fsys.Stat(p)
	if err != nil || fi.Size() != 300 || fi.IsDir() {
		t.Fatalf("stat: %v %v", fi, err)
	}
	blocks, err := fsys.Blocks(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{Offset: 0, Length: 200, Hosts: []string{"dn1.example.com", "dn2.example.com"}, Addrs: []string{"10.0.0.1", "10.0.0.2"}},
		{Offset: 200, Length: 100, Hosts: []string{"dn3.example.com"}, Addrs: []string{"10.0.0.3"}},
	}
	if !reflect.DeepEqual(blocks, want) {
		t.Fatalf("blocks %+v\nwant %+v", blocks, want)
	}
	nn.mu.Lock()
	req := nn.reqs["getBlockLocations"]
	nn.mu.Unlock()
	if req == nil || get(req, "src").String() != "/data/b.txt" || get(req, "length").Uint() != 300 {
		t.Fatalf("getBlockLocations request %v", req)
	}

	// The same client (cached per namenode and user) serves the next
	// lookup; a namenode error comes back naming the file.
	again, _, err := Lookup("hdfs://"+nn.l.Addr().String()+"/other", 0)
	if err != nil || again != fsys {
		t.Fatalf("second lookup: %v (same client: %v)", err, again == fsys)
	}
	if _, err := fsys.ReadDir("/data/b.txt"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("readdir of a file: %v", err)
	}
	err = fsys.RemoveAll("/data/b.txt")
	if err == nil || !strings.Contains(err.Error(), "hdfs://"+nn.l.Addr().String()+"/data/b.txt") || !strings.Contains(err.Error(), "UnsupportedOperationException") {
		t.Fatalf("a namenode exception: %v", err)
	}
	t.Log(err)
}
