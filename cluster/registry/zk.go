package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
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
// whose session expired can never write, however late it runs. The same
// transaction appends an entry to the change log, ROOT/log: a sequential
// znode naming the znodes it changed, so that standby masters keep a copy
// of the registry current (ZKCache) and a new leader reads only what
// changed since, not every agent (the newest LogKeep entries are kept).
type ZK struct {
	acl    []gozk.ACL
	conn   *gozk.Conn
	root   string
	fence  func() (*gozk.CheckVersionRequest, error)
	cache  *ZKCache
	writes int // transactions written, for the log's trimming
}

// ZKFormat is the format of the registry this code writes: 2 adds the
// change log to 1. A registry in format 1 is read and upgraded in place;
// a master that knows only format 1 refuses format 2, so no master that
// writes without logging can lead once one that logs has opened it.
const (
	ZKFormat   = "agora-registry/2"
	zkFormatV1 = "agora-registry/1"
)

// LogKeep is how many change-log entries the registry keeps: a standby
// whose copy is further behind reads the registry whole again.
const LogKeep = 1000

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
	// The server this session reads from may lag the ensemble's leader:
	// a new leading master must see every write its predecessor made.
	if _, err := conn.Sync(z.root); err != nil {
		return nil, fmt.Errorf("registry: sync %s: %w", z.root, err)
	}
	format, _, err := conn.Get(z.root)
	if err != nil {
		return nil, fmt.Errorf("registry: read %s: %w", z.root, err)
	}
	switch string(format) {
	case ZKFormat:
	case zkFormatV1:
		if _, err := conn.Set(z.root, []byte(ZKFormat), -1); err != nil {
			return nil, fmt.Errorf("registry: upgrade %s to format %s: %w", z.root, ZKFormat, err)
		}
	default:
		return nil, fmt.Errorf("registry: %s holds %q, not a registry in format %s: refusing to read or write it", z.root, format, ZKFormat)
	}
	// A registry written before frameworks were recorded gains their
	// directory (an older master ignores it), and the change log's.
	for _, p := range []string{"agents", "frameworks", "policy", "log"} {
		if _, err := conn.Create(path.Join(z.root, p), nil, 0, acl); err != nil && !errors.Is(err, gozk.ErrNodeExists) {
			return nil, fmt.Errorf("registry: create %s: %w", path.Join(z.root, p), err)
		}
	}
	return z, nil
}

// write runs ops as one transaction behind the fence, with the change
// log's entry for them.
func (z *ZK) write(what string, ops ...any) error {
	changed := make([]string, 0, len(ops))
	for _, op := range ops {
		var p string
		switch op := op.(type) {
		case *gozk.CreateRequest:
			p = op.Path
		case *gozk.SetDataRequest:
			p = op.Path
		case *gozk.DeleteRequest:
			p = op.Path
		}
		changed = append(changed, strings.TrimPrefix(p, z.root+"/"))
	}
	entry, err := json.Marshal(changed)
	if err != nil {
		return fmt.Errorf("registry: %s: %w", what, err)
	}
	ops = append(ops, &gozk.CreateRequest{Path: path.Join(z.root, "log", logPrefix), Data: entry, Acl: z.acl, Flags: gozk.FlagSequence})
	if err := z.multi(what, ops); err != nil {
		return err
	}
	if z.writes++; z.writes%logTrimEvery == 0 {
		z.trimLog()
	}
	return nil
}

// multi runs ops behind the fence.
func (z *ZK) multi(what string, ops []any) error {
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

// logPrefix names the change log's entries (ZooKeeper appends the
// sequence number); logTrimEvery is how often, in transactions, the
// writer deletes the entries beyond LogKeep.
const (
	logPrefix    = "c-"
	logTrimEvery = 64
)

// trimLog deletes the oldest change-log entries beyond LogKeep. A failure
// only leaves them for the next time.
func (z *ZK) trimLog() {
	names, _, err := z.conn.Children(path.Join(z.root, "log"))
	if err != nil || len(names) <= LogKeep {
		return
	}
	seqs := logSeqs(names)
	var ops []any
	for _, seq := range seqs[:len(seqs)-LogKeep] {
		ops = append(ops, &gozk.DeleteRequest{Path: z.logEntry(seq), Version: -1})
		if len(ops) == 500 {
			if z.multi("trim the change log", ops) != nil {
				return
			}
			ops = nil
		}
	}
	if len(ops) > 0 {
		z.multi("trim the change log", ops)
	}
}

func (z *ZK) logEntry(seq int64) string {
	return path.Join(z.root, "log", fmt.Sprintf("%s%010d", logPrefix, seq))
}

// logSeqs are the sequence numbers of the change log's entries, in order
// (names that are not entries are left out).
func logSeqs(names []string) []int64 {
	seqs := make([]int64, 0, len(names))
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, logPrefix); ok {
			if seq, err := strconv.ParseInt(rest, 10, 64); err == nil {
				seqs = append(seqs, seq)
			}
		}
	}
	slices.Sort(seqs)
	return seqs
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
		ops, size = append(ops, op), size+n+192 // 192: the op's framing and ACL, and its path in the log entry
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

// UseCache makes the reads (Agents, Frameworks, Policy) come from c, a
// standby's copy of this registry, after catching it up; when the copy
// cannot be trusted they read ZooKeeper as without it.
func (z *ZK) UseCache(c *ZKCache) { z.cache = c }

// readAll decodes every znode under ROOT/dir, from the copy or with 64
// reads in flight.
func readAll[T any](z *ZK, dirName, what string) ([]T, error) {
	if z.cache != nil {
		if nodes, recs, ok := z.cache.take(dirName); ok {
			out := make([]T, 0, len(nodes))
			for name, b := range nodes {
				if rec, ok := recs[name].(T); ok {
					out = append(out, rec)
					continue
				}
				var rec T
				if err := json.Unmarshal(b, &rec); err != nil {
					return nil, fmt.Errorf("registry: decode %s %s: %w", what, name, err)
				}
				out = append(out, rec)
			}
			return out, nil
		}
	}
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
	var cached map[string][]byte
	if z.cache != nil {
		if nodes, ok := z.cache.snapshot("policy"); ok {
			cached = nodes
		}
	}
	for _, name := range policyParts {
		var (
			b   []byte
			err error
		)
		if cached != nil {
			var ok bool
			if b, ok = cached[name]; !ok {
				err = gozk.ErrNoNode
			}
		} else {
			b, _, err = z.conn.Get(path.Join(z.root, "policy", name))
		}
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
