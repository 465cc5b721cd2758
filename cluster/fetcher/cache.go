package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// cache holds downloads under dir, named by the hash of user and URI, up
// to capacity bytes. Concurrent fetches of one URI share one download;
// files in use are never evicted; the least recently used are evicted
// first. Bookkeeping lives in memory: New empties dir, as Mesos's agent
// clears its cache on startup.
type cache struct {
	dir      string
	capacity int64

	mu      sync.Mutex
	entries map[string]*cacheEntry
	used    int64  // bytes of resident entries
	clock   uint64 // advances on each use, for LRU
}

type cacheEntry struct {
	key   string
	path  string
	ready chan struct{} // closed when the download ended
	err   error         // set before ready is closed
	size  int64

	// Guarded by cache.mu.
	refs     int    // fetches using the file
	lastUse  uint64 // cache.clock at the last use
	resident bool   // counted in used and listed in entries
	doomed   bool   // remove the file once refs drops to 0
}

func cacheKey(user, uri string) string {
	h := sha256.Sum256([]byte(user + "\x00" + uri))
	return hex.EncodeToString(h[:])
}

// cacheDirMode is the cache directory's mode: the agent's alone.
const cacheDirMode = 0o700

func newCache(dir string, capacity int64) (*cache, error) {
	// The cache holds every framework's downloads, named by user and URI:
	// only the agent (root, which copies them into sandboxes) may list or
	// read them. An older agent's cache directory was 0755: close it too.
	if err := os.MkdirAll(dir, cacheDirMode); err != nil {
		return nil, err
	}
	// A directory others may write into (/tmp, say) is refused, not
	// closed: chmod would take it from everyone else, and anyone could
	// plant a file under a download's name.
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("fetcher cache %s is not a directory (a link?): give the cache a directory of its own", dir)
	}
	if fi.Mode()&(os.ModeSticky|0o002) != 0 {
		return nil, fmt.Errorf("fetcher cache %s is writable by every user (mode %v): give the cache a directory of its own", dir, fi.Mode())
	}
	if err := os.Chmod(dir, cacheDirMode); err != nil {
		return nil, err
	}
	// Remove only what a cache left: files named by a key, and partial
	// downloads. The directory may be shared with other things.
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		n := e.Name()
		if isKeyName(n) || strings.HasPrefix(n, ".download-") {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return nil, fmt.Errorf("clear old cache file: %w", err)
			}
		}
	}
	return &cache{dir: dir, capacity: capacity, entries: map[string]*cacheEntry{}}, nil
}

func isKeyName(n string) bool {
	if len(n) != 64 {
		return false
	}
	_, err := hex.DecodeString(n)
	return err == nil
}

// get returns the entry for key, downloading it with fill if it is not
// cached; hit says whether it was. The caller must release the entry.
// Fetches of the same key that arrive during the download wait for it
// and share its result, error included.
func (c *cache) get(ctx context.Context, key string, fill func(io.Writer) (int64, error)) (e *cacheEntry, hit bool, err error) {
	c.mu.Lock()
	if e = c.entries[key]; e != nil {
		e.refs++
		c.clock++
		e.lastUse = c.clock
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			c.release(e)
			return nil, false, ctx.Err()
		}
		if e.err != nil {
			c.release(e)
			return nil, false, e.err
		}
		return e, true, nil
	}
	c.clock++
	e = &cacheEntry{key: key, path: filepath.Join(c.dir, key), ready: make(chan struct{}), refs: 1, lastUse: c.clock}
	c.entries[key] = e
	c.mu.Unlock()

	size, err := c.download(e, fill)
	c.mu.Lock()
	if err != nil {
		delete(c.entries, key)
		e.err = err
		e.refs--
		c.mu.Unlock()
		close(e.ready)
		return nil, false, err
	}
	e.size = size
	if c.makeRoom(size) {
		e.resident = true
		c.used += size
	} else {
		// Too big for what can be evicted now: serve this fetch (and its
		// waiters) from the file, then drop it.
		delete(c.entries, key)
		e.doomed = true
	}
	c.mu.Unlock()
	close(e.ready)
	return e, false, nil
}

// download fills a temporary file and renames it into place.
func (c *cache) download(e *cacheEntry, fill func(io.Writer) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(c.dir, ".download-*")
	if err != nil {
		return 0, fmt.Errorf("create cache file: %w", err)
	}
	n, err := fill(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), e.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return n, nil
}

// makeRoom evicts unused entries, least recently used first, until size
// more bytes fit; c.mu is held. It reports whether they fit.
func (c *cache) makeRoom(size int64) bool {
	if size > c.capacity {
		return false
	}
	for c.used+size > c.capacity {
		var victim *cacheEntry
		for _, e := range c.entries {
			if e.resident && e.refs == 0 && (victim == nil || e.lastUse < victim.lastUse) {
				victim = e
			}
		}
		if victim == nil {
			return false
		}
		c.evict(victim)
	}
	return true
}

// evict removes a resident entry that nobody uses; c.mu is held.
func (c *cache) evict(e *cacheEntry) {
	delete(c.entries, e.key)
	e.resident = false
	c.used -= e.size
	os.Remove(e.path)
}

// release ends one use of e.
func (c *cache) release(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs == 0 && e.doomed {
		os.Remove(e.path)
	}
}

// usage reports the resident bytes and entries, for tests and metrics.
func (c *cache) usage() (bytes int64, files int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.resident {
			files++
		}
	}
	return c.used, files
}
