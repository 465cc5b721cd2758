package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	gozk "github.com/go-zookeeper/zk"
)

// ZK keeps the registry in ZooKeeper, for masters that elect a leader
// there: one znode per agent under ROOT/agents, one per framework under
// ROOT/frameworks, and the policy as one
// znode per part under ROOT/policy (weights, quotas, maintenance, down),
// so no single znode grows with the cluster (ZooKeeper caps a znode at
// 1 MB by default). ROOT's data names the format; a registry written in a
// format this master does not know is refused, not misread.
//
// Every write is one ZooKeeper transaction that starts with the fence —
// a check that the writer's election znode still exists — so a master
// whose session expired can never write, however late it runs.
type ZK struct {
	acl   []gozk.ACL
	conn  *gozk.Conn
	root  string
	fence func() (*gozk.CheckVersionRequest, error)
}

// ZKFormat is the format of the registry this code writes.
const ZKFormat = "agora-registry/1"

// MaxZNode is the largest znode the registry writes (ZooKeeper's default
// jute.maxbuffer is 1 MB; the margin is for the request's framing).
const MaxZNode = 1000 * 1024

var policyParts = []string{"weights", "quotas", "maintenance", "down"}

// OpenZK opens (creating when absent) the registry under root on conn.
// fence gives the check that must lead every write; nil writes unfenced
// (tools and tests that are the only writer). acl is what its znodes get
// (default: all rights for everyone; see zk.URL.ACL).
func OpenZK(conn *gozk.Conn, root string, fence func() (*gozk.CheckVersionRequest, error), acl ...gozk.ACL) (*ZK, error) {
	if len(acl) == 0 {
		acl = gozk.WorldACL(gozk.PermAll)
	}
	z := &ZK{conn: conn, root: path.Clean("/" + root), fence: fence, acl: acl}
	cur := ""
	parts := strings.Split(strings.Trim(z.root, "/"), "/")
	for i, seg := range parts {
		cur += "/" + seg
		var data []byte
		if i == len(parts)-1 {
			data = []byte(ZKFormat)
		}
		if _, err := conn.Create(cur, data, 0, acl); err != nil && !errors.Is(err, gozk.ErrNodeExists) {
			return nil, fmt.Errorf("registry: create %s in ZooKeeper: %w", cur, err)
		}
	}
	format, _, err := conn.Get(z.root)
	if err != nil {
		return nil, fmt.Errorf("registry: read %s: %w", z.root, err)
	}
	if string(format) != ZKFormat {
		return nil, fmt.Errorf("registry: %s holds %q, not a registry in format %s: refusing to read or write it", z.root, format, ZKFormat)
	}
	// A registry written before frameworks were recorded gains their
	// directory: the format is unchanged (an older master ignores it).
	for _, p := range []string{"agents", "frameworks", "policy"} {
		if _, err := conn.Create(path.Join(z.root, p), nil, 0, acl); err != nil && !errors.Is(err, gozk.ErrNodeExists) {
			return nil, fmt.Errorf("registry: create %s: %w", path.Join(z.root, p), err)
		}
	}
	return z, nil
}

// write runs ops as one transaction behind the fence.
func (z *ZK) write(what string, ops ...any) error {
	if z.fence != nil {
		f, err := z.fence()
		if err != nil {
			return fmt.Errorf("registry: %s: not written: %w", what, err)
		}
		ops = append([]any{f}, ops...)
	}
	if _, err := z.conn.Multi(ops...); err != nil {
		return fmt.Errorf("registry: %s: %w", what, err)
	}
	return nil
}

// existing reports, for the agents' and frameworks' znodes that changes
// touch, whether each exists now.
func (z *ZK) existing(changes []Change) (map[string]bool, error) {
	var paths []string
	seen := map[string]bool{}
	for _, c := range changes {
		var (
			p   string
			err error
		)
		switch {
		case c.Agent != nil:
			p, err = z.agentPath(c.Agent.ID)
		case c.DeleteAgent != "":
			p, err = z.agentPath(c.DeleteAgent)
		case c.Framework != nil:
			p, err = z.frameworkPath(c.Framework.ID)
		case c.DeleteFramework != "":
			p, err = z.frameworkPath(c.DeleteFramework)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	found := make([]bool, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 64 && w < len(paths); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				found[i], _, errs[i] = z.conn.Exists(paths[i])
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	out := make(map[string]bool, len(paths))
	for i, p := range paths {
		if errs[i] != nil {
			return nil, fmt.Errorf("registry: %s: %w", p, errs[i])
		}
		out[p] = found[i]
	}
	return out, nil
}

func (z *ZK) agentPath(id string) (string, error) { return z.keyPath("agents", "agent", id) }

func (z *ZK) frameworkPath(id string) (string, error) {
	return z.keyPath("frameworks", "framework", id)
}

func (z *ZK) keyPath(dir, what, id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return "", fmt.Errorf("registry: %s ID %q cannot name a znode", what, id)
	}
	return path.Join(z.root, dir, id), nil
}

func (z *ZK) PutAgent(rec AgentRecord) error { return z.Apply([]Change{{Agent: &rec}}) }

func (z *ZK) DeleteAgent(id string) error { return z.Apply([]Change{{DeleteAgent: id}}) }

func (z *ZK) PutPolicy(p Policy) error { return z.Apply([]Change{{Policy: &p}}) }

// maxMulti bounds the bytes of one ZooKeeper transaction (the server
// refuses a request over jute.maxbuffer, 1 MB by default).
const maxMulti = 900 * 1024

// Apply writes changes in order, as one fenced ZooKeeper transaction when
// they fit in one request and as several in order when they do not. In
// that case a failure can leave the earlier transactions written though
// the error is returned: the master acts on none of the batch, as if it
// had crashed between writing and acting — what it acknowledged is still
// durable, and the agents and operators whose changes it refused retry.
func (z *ZK) Apply(changes []Change) error {
	// What the ops so far leave in place, starting from what is there:
	// the agents' znodes are looked up all at once (the connection
	// pipelines the requests) rather than one round trip per change.
	exists, err := z.existing(changes)
	if err != nil {
		return err
	}
	present := func(p string) (bool, error) {
		if e, ok := exists[p]; ok {
			return e, nil
		}
		ok, _, err := z.conn.Exists(p)
		if err != nil {
			return false, fmt.Errorf("registry: %s: %w", p, err)
		}
		return ok, nil
	}
	put := func(p string, data []byte) (any, error) {
		if len(data) > MaxZNode {
			return nil, fmt.Errorf("registry: %s would be %d bytes, over ZooKeeper's %d-byte znode limit", p, len(data), MaxZNode)
		}
		ok, err := present(p)
		if err != nil {
			return nil, err
		}
		exists[p] = true
		if ok {
			return &gozk.SetDataRequest{Path: p, Data: data, Version: -1}, nil
		}
		return &gozk.CreateRequest{Path: p, Data: data, Acl: z.acl}, nil
	}
	var (
		batches [][]any
		ops     []any
		size    int
	)
	add := func(op any, n int) {
		if size+n > maxMulti && len(ops) > 0 {
			batches = append(batches, ops)
			ops, size = nil, 0
		}
		ops, size = append(ops, op), size+n+128 // 128: the op's framing and ACL
	}
	for _, c := range changes {
		switch {
		case c.Agent != nil:
			p, err := z.agentPath(c.Agent.ID)
			if err != nil {
				return err
			}
			b, err := json.Marshal(c.Agent)
			if err != nil {
				return fmt.Errorf("registry: encode agent %s: %w", c.Agent.ID, err)
			}
			op, err := put(p, b)
			if err != nil {
				return err
			}
			add(op, len(p)+len(b))
		case c.DeleteAgent != "" || c.DeleteFramework != "":
			var (
				p   string
				err error
			)
			if c.DeleteAgent != "" {
				p, err = z.agentPath(c.DeleteAgent)
			} else {
				p, err = z.frameworkPath(c.DeleteFramework)
			}
			if err != nil {
				return err
			}
			ok, err := present(p)
			if err != nil {
				return err
			}
			if ok {
				exists[p] = false
				add(&gozk.DeleteRequest{Path: p, Version: -1}, len(p))
			}
		case c.Framework != nil:
			p, err := z.frameworkPath(c.Framework.ID)
			if err != nil {
				return err
			}
			b, err := json.Marshal(c.Framework)
			if err != nil {
				return fmt.Errorf("registry: encode framework %s: %w", c.Framework.ID, err)
			}
			op, err := put(p, b)
			if err != nil {
				return err
			}
			add(op, len(p)+len(b))
		case c.Policy != nil:
			pol := c.Policy
			parts := map[string]any{"weights": pol.Weights, "quotas": pol.Quotas, "maintenance": pol.Maintenance, "down": pol.Down}
			for _, name := range policyParts {
				b, err := json.Marshal(parts[name])
				if err != nil {
					return fmt.Errorf("registry: encode policy %s: %w", name, err)
				}
				pp := path.Join(z.root, "policy", name)
				op, err := put(pp, b)
				if err != nil {
					return err
				}
				add(op, len(pp)+len(b))
			}
		default:
			return fmt.Errorf("registry: a change sets none of agent, framework, delete or policy")
		}
	}
	if len(ops) > 0 {
		batches = append(batches, ops)
	}
	for i, b := range batches {
		if err := z.write(fmt.Sprintf("store %d changes (transaction %d of %d)", len(changes), i+1, len(batches)), b...); err != nil {
			return err
		}
	}
	return nil
}

// Agents reads every agent's znode, many at a time (the connection
// pipelines requests), so recovering tens of thousands of agents takes
// round trips in parallel rather than in sequence.
func (z *ZK) Agents() ([]AgentRecord, error) {
	recs, err := readAll[AgentRecord](z, "agents", "agent")
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs, err
}

// Frameworks reads every framework's znode, as Agents does.
func (z *ZK) Frameworks() ([]FrameworkRecord, error) {
	recs, err := readAll[FrameworkRecord](z, "frameworks", "framework")
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs, err
}

// readAll decodes every znode under ROOT/dir, 64 reads in flight.
func readAll[T any](z *ZK, dirName, what string) ([]T, error) {
	dir := path.Join(z.root, dirName)
	ids, _, err := z.conn.Children(dir)
	if err != nil {
		return nil, fmt.Errorf("registry: list %s: %w", dir, err)
	}
	out := make([]T, len(ids))
	found := make([]bool, len(ids))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	for w := 0; w < 64 && w < len(ids); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				b, _, err := z.conn.Get(path.Join(dir, ids[i]))
				if errors.Is(err, gozk.ErrNoNode) {
					continue // deleted since the listing
				}
				if err == nil {
					err = json.Unmarshal(b, &out[i])
					if err != nil {
						err = fmt.Errorf("registry: decode %s %s: %w", what, ids[i], err)
					}
				} else {
					err = fmt.Errorf("registry: read %s %s: %w", what, ids[i], err)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				found[i] = err == nil
				mu.Unlock()
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	recs := out[:0]
	for i, rec := range out {
		if found[i] {
			recs = append(recs, rec)
		}
	}
	return recs, nil
}

func (z *ZK) Policy() (Policy, error) {
	var p Policy
	targets := map[string]any{"weights": &p.Weights, "quotas": &p.Quotas, "maintenance": &p.Maintenance, "down": &p.Down}
	for _, name := range policyParts {
		b, _, err := z.conn.Get(path.Join(z.root, "policy", name))
		if errors.Is(err, gozk.ErrNoNode) {
			continue
		}
		if err != nil {
			return p, fmt.Errorf("registry: read policy %s: %w", name, err)
		}
		if len(b) == 0 || string(b) == "null" {
			continue
		}
		if err := json.Unmarshal(b, targets[name]); err != nil {
			return p, fmt.Errorf("registry: decode policy %s: %w", name, err)
		}
	}
	return p, nil
}

// Close leaves the connection to its owner (the election group).
func (z *ZK) Close() error { return nil }
