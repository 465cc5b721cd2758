package fs

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/colinmarc/hdfs/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// The colinmarc/hdfs client reads block locations for itself but does not
// export them. Blocks therefore makes the same ClientNamenodeProtocol call
// (getBlockLocations) over the client's own namenode connection, so it
// shares its authentication, HA failover and retries. The connection is an
// unexported field of hdfs.Client and the request/response types live in
// an internal package: the field is reached through reflection and the
// messages are built from the protobuf registry by their proto names. The
// module version is pinned in go.mod; TestHDFSNamenodeReachable fails if an
// upgrade moves either.

// namenodeCaller is what rpc.NamenodeConnection offers.
type namenodeCaller interface {
	Execute(method string, req proto.Message, resp proto.Message) error
}

var errNoBlockAPI = errors.New("this github.com/colinmarc/hdfs/v2 client does not expose its namenode connection (module upgraded?)")

// namenodeOf returns the client's namenode connection.
func namenodeOf(c *hdfs.Client) (namenodeCaller, error) {
	if c == nil {
		return nil, errNoBlockAPI
	}
	f := reflect.ValueOf(c).Elem().FieldByName("namenode")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil, errNoBlockAPI
	}
	v := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	nn, ok := v.Interface().(namenodeCaller)
	if !ok {
		return nil, errNoBlockAPI
	}
	return nn, nil
}

// hdfsMessage returns a new, empty message of a Hadoop protocol type.
func hdfsMessage(name protoreflect.FullName) (protoreflect.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoBlockAPI, err)
	}
	return mt.New(), nil
}

// blockLocations asks the namenode for the blocks of the size bytes of
// name and the datanodes holding each replica.
func blockLocations(c *hdfs.Client, name string, size int64) ([]Block, error) {
	nn, err := namenodeOf(c)
	if err != nil {
		return nil, err
	}
	resp, err := getBlockLocations(nn, name, size)
	if err != nil {
		return nil, err
	}
	return BlocksFromLocations(resp)
}

// getBlockLocations is the namenode's GetBlockLocationsResponseProto for
// the first length bytes of name.
func getBlockLocations(nn namenodeCaller, name string, length int64) (protoreflect.Message, error) {
	req, err := hdfsMessage("hadoop.hdfs.GetBlockLocationsRequestProto")
	if err != nil {
		return nil, err
	}
	resp, err := hdfsMessage("hadoop.hdfs.GetBlockLocationsResponseProto")
	if err != nil {
		return nil, err
	}
	if err := setFields(req, map[protoreflect.Name]protoreflect.Value{
		"src":    protoreflect.ValueOfString(name),
		"offset": protoreflect.ValueOfUint64(0),
		"length": protoreflect.ValueOfUint64(uint64(length)),
	}); err != nil {
		return nil, err
	}
	if err := nn.Execute("getBlockLocations", req.Interface(), resp.Interface()); err != nil {
		return nil, fmt.Errorf("getBlockLocations: %w", err)
	}
	return resp, nil
}

func setFields(m protoreflect.Message, vals map[protoreflect.Name]protoreflect.Value) error {
	fields := m.Descriptor().Fields()
	for name, v := range vals {
		fd := fields.ByName(name)
		if fd == nil {
			return fmt.Errorf("%w: %s has no field %s", errNoBlockAPI, m.Descriptor().FullName(), name)
		}
		m.Set(fd, v)
	}
	return nil
}

// get returns field name of m, or an invalid Value if m has no such field.
func get(m protoreflect.Message, name protoreflect.Name) protoreflect.Value {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil {
		return protoreflect.Value{}
	}
	return m.Get(fd)
}

// BlocksFromLocations reads a GetBlockLocationsResponseProto: each located
// block becomes a Block with its datanodes' hostnames in Hosts and their
// IP addresses in Addrs. A file with no blocks yet (empty) has none.
func BlocksFromLocations(resp protoreflect.Message) ([]Block, error) {
	locs := get(resp, "locations")
	if !locs.IsValid() {
		return nil, fmt.Errorf("%w: %s has no locations", errNoBlockAPI, resp.Descriptor().FullName())
	}
	list := get(locs.Message(), "blocks")
	if !list.IsValid() {
		return nil, fmt.Errorf("%w: LocatedBlocksProto has no blocks", errNoBlockAPI)
	}
	var out []Block
	for i := 0; i < list.List().Len(); i++ {
		lb := list.List().Get(i).Message()
		b := Block{Offset: int64(get(lb, "offset").Uint())}
		if eb := get(lb, "b"); eb.IsValid() {
			b.Length = int64(get(eb.Message(), "numBytes").Uint())
		}
		if dns := get(lb, "locs"); dns.IsValid() {
			for j := 0; j < dns.List().Len(); j++ {
				id := get(dns.List().Get(j).Message(), "id")
				if !id.IsValid() {
					continue
				}
				host := get(id.Message(), "hostName").String()
				addr := get(id.Message(), "ipAddr").String()
				if host == "" {
					host = addr
				}
				b.Hosts = append(b.Hosts, host)
				b.Addrs = append(b.Addrs, addr)
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// completeFile asks the namenode to close name, a file this client is
// writing and has written written bytes to, naming its last block with the
// length written into it, as Hadoop's client does at every attempt.
// colinmarc/hdfs's Close names the last block only the first time: a Close
// retried after "replication in progress" names none, and the namenode,
// which commits the last block only once every earlier block is complete,
// then never commits it if an earlier block was not complete at the first
// attempt — the file could never be closed. It reports whether the file is
// now closed (false: its blocks are still waiting for their replicas).
func completeFile(c *hdfs.Client, name string, written int64) (bool, error) {
	nn, err := namenodeOf(c)
	if err != nil {
		return false, err
	}
	resp, err := getBlockLocations(nn, name, max(written, 1))
	if err != nil {
		return false, err
	}
	last, err := lastBlockOf(resp, written)
	if err != nil {
		return false, err
	}
	creq, err := hdfsMessage("hadoop.hdfs.CompleteRequestProto")
	if err != nil {
		return false, err
	}
	cresp, err := hdfsMessage("hadoop.hdfs.CompleteResponseProto")
	if err != nil {
		return false, err
	}
	vals := map[protoreflect.Name]protoreflect.Value{
		"src":        protoreflect.ValueOfString(name),
		"clientName": protoreflect.ValueOfString(c.Name()),
	}
	if last != nil {
		vals["last"] = protoreflect.ValueOfMessage(last)
	}
	if err := setFields(creq, vals); err != nil {
		return false, err
	}
	if err := nn.Execute("complete", creq.Interface(), cresp.Interface()); err != nil {
		return false, fmt.Errorf("complete: %w", err)
	}
	return get(cresp, "result").Bool(), nil
}

// lastBlockOf is the last block of the file a GetBlockLocationsResponseProto
// describes, as an ExtendedBlockProto whose length is what was written past
// the earlier blocks; nil for a file without blocks.
func lastBlockOf(resp protoreflect.Message, written int64) (protoreflect.Message, error) {
	locs := get(resp, "locations")
	if !locs.IsValid() || !locs.Message().IsValid() {
		return nil, fmt.Errorf("%w: no block locations for a file being written", errNoBlockAPI)
	}
	var lastB protoreflect.Message
	if lb := get(locs.Message(), "lastBlock"); lb.IsValid() && lb.Message().IsValid() {
		if b := get(lb.Message(), "b"); b.IsValid() && b.Message().IsValid() {
			lastB = b.Message()
		}
	}
	blocks := get(locs.Message(), "blocks")
	if !blocks.IsValid() {
		return nil, fmt.Errorf("%w: LocatedBlocksProto has no blocks", errNoBlockAPI)
	}
	if lastB == nil && blocks.List().Len() > 0 {
		lastB = get(blocks.List().Get(blocks.List().Len()-1).Message(), "b").Message()
	}
	if lastB == nil {
		return nil, nil
	}
	id := get(lastB, "blockId").Uint()
	before := int64(0)
	for i := 0; i < blocks.List().Len(); i++ {
		b := get(blocks.List().Get(i).Message(), "b")
		if b.IsValid() && get(b.Message(), "blockId").Uint() != id {
			before += int64(get(b.Message(), "numBytes").Uint())
		}
	}
	if before > written {
		return nil, fmt.Errorf("the namenode's blocks hold %d bytes before the last one, more than the %d written", before, written)
	}
	out := proto.Clone(lastB.Interface()).ProtoReflect()
	if err := setFields(out, map[protoreflect.Name]protoreflect.Value{
		"numBytes": protoreflect.ValueOfUint64(uint64(written - before)),
	}); err != nil {
		return nil, err
	}
	return out, nil
}
