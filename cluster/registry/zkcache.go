package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	gozk "github.com/go-zookeeper/zk"
)

// ZKCache is a standby master's copy of a ZooKeeper registry. It reads
// the registry whole once, then follows the change log (see ZK): for each
// new entry it reads again only the znodes the entry names. A master
// elected leader catches the copy up — the entries written since its last
// look, usually none or a few — instead of reading back every agent's
// znode, which takes seconds at tens of thousands of agents.
//
// The copy is only trusted while it is provably complete: the registry is
// in the format that logs every write, and the log still holds every
// entry after the copy's cursor. Otherwise it is read whole again.
type ZKCache struct {
	conn func() *gozk.Conn
	root string
	log  *slog.Logger

	syncMu sync.Mutex // one Sync at a time (Run's, a new leader's)
	mu     sync.Mutex
	nodes  map[string][]byte // "agents/ID", "frameworks/ID", "policy/NAME"
	// decoded holds the agents' and frameworks' records decoded from
	// nodes as they arrive, so that a new leader need not decode tens of
	// thousands of them while every agent waits (see take).
	decoded map[string]any
	cursor  int64 // the last log entry applied
	valid   bool
	reads   int // whole reads, for tests
}

// NewZKCache follows the registry under root through conn (the election's
// connection of the moment: it changes with the session).
func NewZKCache(conn func() *gozk.Conn, root string, log *slog.Logger) *ZKCache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ZKCache{conn: conn, root: path.Clean("/" + root), log: log}
}

// Run keeps the copy current until ctx ends.
func (c *ZKCache) Run(ctx context.Context) {
	for ctx.Err() == nil {
		changed, err := c.Sync(true)
		if err != nil {
			c.log.Debug("registry copy: not current", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-changed:
			// Let a burst of writes land: one catch-up reads them all.
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// Sync brings the copy up to date now: applies the log's new entries or,
// when the copy is not trusted or misses entries, reads the registry
// whole. With watch it also returns a channel that fires when the log
// changes next.
func (c *ZKCache) Sync(watch bool) (<-chan gozk.Event, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	conn := c.conn()
	if conn == nil {
		return nil, errors.New("registry copy: no ZooKeeper connection")
	}
	if !watch {
		// A catch-up for a new leader: see the ensemble's latest writes,
		// not a lagging server's.
		if _, err := conn.Sync(c.root); err != nil {
			return nil, fmt.Errorf("registry copy: sync %s: %w", c.root, err)
		}
	}
	format, _, err := conn.Get(c.root)
	if err != nil {
		c.invalidate()
		return nil, fmt.Errorf("registry copy: read %s: %w", c.root, err)
	}
	if string(format) != ZKFormat {
		// Writers of an older format do not log: nothing can be trusted
		// until a master of this format has opened it.
		c.invalidate()
		return nil, fmt.Errorf("registry copy: %s holds format %q, not %s", c.root, format, ZKFormat)
	}
	logDir := path.Join(c.root, "log")
	var names []string
	var changed <-chan gozk.Event
	if watch {
		names, _, changed, err = conn.ChildrenW(logDir)
	} else {
		names, _, err = conn.Children(logDir)
	}
	if err != nil {
		c.invalidate()
		return nil, fmt.Errorf("registry copy: list %s: %w", logDir, err)
	}
	seqs := logSeqs(names)
	c.mu.Lock()
	cursor, valid := c.cursor, c.valid
	c.mu.Unlock()
	if !valid || (len(seqs) > 0 && seqs[0] > cursor+1) {
		return changed, c.readWhole(conn, seqs)
	}
	var newer []int64
	for _, seq := range seqs {
		if seq > cursor {
			newer = append(newer, seq)
		}
	}
	if len(newer) == 0 {
		return changed, nil
	}
	if err := c.apply(conn, newer); err != nil {
		c.invalidate()
		return nil, err
	}
	return changed, nil
}

// readWhole reads every znode of the registry; seqs is the log as listed
// just before, so entries written during the read are applied next time
// (reading again what the copy may already hold is harmless).
func (c *ZKCache) readWhole(conn *gozk.Conn, seqs []int64) error {
	nodes := map[string][]byte{}
	var mu sync.Mutex
	for _, dir := range []string{"agents", "frameworks", "policy"} {
		names, _, err := conn.Children(path.Join(c.root, dir))
		if errors.Is(err, gozk.ErrNoNode) {
			continue
		}
		if err != nil {
			c.invalidate()
			return fmt.Errorf("registry copy: list %s: %w", dir, err)
		}
		keys := make([]string, len(names))
		for i, n := range names {
			keys[i] = dir + "/" + n
		}
		if err := c.getAll(conn, keys, func(key string, data []byte, ok bool) {
			if ok {
				mu.Lock()
				nodes[key] = data
				mu.Unlock()
			}
		}); err != nil {
			c.invalidate()
			return err
		}
	}
	cursor := int64(-1)
	if len(seqs) > 0 {
		cursor = seqs[len(seqs)-1]
	}
	decoded := make(map[string]any, len(nodes))
	for k, b := range nodes {
		if v, ok := decodeRecord(k, b); ok {
			decoded[k] = v
		}
	}
	c.mu.Lock()
	c.nodes, c.decoded, c.cursor, c.valid = nodes, decoded, cursor, true
	c.reads++
	c.mu.Unlock()
	return nil
}

// apply reads the log entries seqs and then the znodes they name.
func (c *ZKCache) apply(conn *gozk.Conn, seqs []int64) error {
	seen := map[string]bool{}
	var keys []string
	for _, seq := range seqs {
		p := path.Join(c.root, "log", fmt.Sprintf("%s%010d", logPrefix, seq))
		b, _, err := conn.Get(p)
		if err != nil {
			// Trimmed since the listing: the copy missed it.
			return fmt.Errorf("registry copy: read %s: %w", p, err)
		}
		var changed []string
		if err := json.Unmarshal(b, &changed); err != nil {
			return fmt.Errorf("registry copy: decode %s: %w", p, err)
		}
		for _, k := range changed {
			if !seen[k] && k != "" && !strings.HasPrefix(k, "/") {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	type result struct {
		data []byte
		ok   bool
	}
	got := make(map[string]result, len(keys))
	var mu sync.Mutex
	if err := c.getAll(conn, keys, func(key string, data []byte, ok bool) {
		mu.Lock()
		got[key] = result{data, ok}
		mu.Unlock()
	}); err != nil {
		return err
	}
	decoded := map[string]any{}
	for k, r := range got {
		if v, ok := decodeRecord(k, r.data); r.ok && ok {
			decoded[k] = v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.decoded == nil {
		c.decoded = map[string]any{}
	}
	for k, r := range got {
		if r.ok {
			c.nodes[k] = r.data
		} else {
			delete(c.nodes, k)
		}
		if v, ok := decoded[k]; ok {
			c.decoded[k] = v
		} else {
			delete(c.decoded, k)
		}
	}
	c.cursor = seqs[len(seqs)-1]
	return nil
}

// getAll reads the znodes keys (relative to the root), 64 in flight (the
// connection pipelines them); put is told each one's data, or !ok when it
// does not exist.
func (c *ZKCache) getAll(conn *gozk.Conn, keys []string, put func(key string, data []byte, ok bool)) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan string)
	for w := 0; w < 64 && w < len(keys); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				b, _, err := conn.Get(path.Join(c.root, k))
				switch {
				case errors.Is(err, gozk.ErrNoNode):
					put(k, nil, false)
				case err != nil:
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("registry copy: read %s: %w", k, err)
					}
					mu.Unlock()
				default:
					put(k, b, true)
				}
			}
		}()
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	return firstErr
}

func (c *ZKCache) invalidate() {
	c.mu.Lock()
	c.valid, c.nodes, c.decoded = false, nil, nil
	c.mu.Unlock()
}

// decodeRecord decodes the agent or framework record at key, the way
// readAll would; ok is false for other keys and for data it cannot
// decode (readAll then decodes it, and reports the error).
func decodeRecord(key string, data []byte) (any, bool) {
	switch {
	case strings.HasPrefix(key, "agents/"):
		var rec AgentRecord
		if json.Unmarshal(data, &rec) == nil {
			return rec, true
		}
	case strings.HasPrefix(key, "frameworks/"):
		var rec FrameworkRecord
		if json.Unmarshal(data, &rec) == nil {
			return rec, true
		}
	}
	return nil, false
}

// take is snapshot with the records of dir the copy has decoded, by
// name. They become the caller's (a new leader's, which may change them):
// the copy forgets them, and decodes again only what changes next.
func (c *ZKCache) take(dir string) (map[string][]byte, map[string]any, bool) {
	nodes, ok := c.snapshot(dir)
	if !ok {
		return nil, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	recs := map[string]any{}
	for name := range nodes {
		key := dir + "/" + name
		if v, ok := c.decoded[key]; ok {
			recs[name] = v
			delete(c.decoded, key)
		}
	}
	return nodes, recs, true
}

// snapshot is the copy's znodes under dir ("agents", ...) by name, after
// a catch-up; false when the copy cannot be trusted (the caller reads the
// registry itself).
func (c *ZKCache) snapshot(dir string) (map[string][]byte, bool) {
	if _, err := c.Sync(false); err != nil {
		c.log.Info("registry copy not used", "err", err)
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid {
		return nil, false
	}
	out := map[string][]byte{}
	for k, v := range c.nodes {
		if name, ok := strings.CutPrefix(k, dir+"/"); ok {
			out[name] = v
		}
	}
	c.log.Info("registry read from the standby's copy", "part", dir, "znodes", len(out), "log_cursor", c.cursor)
	return out, true
}
