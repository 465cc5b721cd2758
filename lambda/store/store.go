// Package store keeps a lambda pipeline's batch views in Cassandra, the
// serving store of the real-engine path (layers.serving: cassandra).
//
// Each batch view is written whole as a new generation, which queries do
// not read until it is made current. A generation is complete once all
// its rows are written; it is then listed, with its batch watermark, in
// batch_generations, and only a listed generation is read. Generations
// are ordered by their watermarks, so that a swap deletes only complete
// generations older than its own: another server of the same pipeline
// (a relaunched speed task, two runs of `up`) serving or still writing a
// newer or equal one keeps it. A server whose generation a newer swap
// has deleted gets a clear error from Rows, never empty rows.
// Rows are partitioned by pipeline, generation, view and key, so that a
// query reads one partition, its buckets in order. A generation's keys
// are listed in a table of their own, so that dropping it deletes whole
// partitions rather than scanning the view.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/agora-cluster/agora/cassandra/cql"
	"github.com/agora-cluster/agora/lambda/view"
)

// Keyspace holds every pipeline's tables.
const Keyspace = "agora_lambda"

// Cassandra is one pipeline's batch views in a Cassandra ring.
type Cassandra struct {
	s        *gocql.Session
	pipeline string
}

// Open connects to the ring at addrs (HOST:PORT of native transport
// each) and makes the keyspace (replication factor rf) and its tables if
// they are missing.
func Open(ctx context.Context, addrs []string, pipeline string, rf int) (*Cassandra, error) {
	if rf < 1 {
		return nil, fmt.Errorf("store: replication factor %d: at least 1", rf)
	}
	c, err := cql.Cluster(addrs, 20*time.Second)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	c.Consistency = gocql.Quorum
	s, err := c.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("store: Cassandra at %v: %w", addrs, err)
	}
	for _, q := range []string{
		fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}`, Keyspace, rf),
		`CREATE TABLE IF NOT EXISTS ` + Keyspace + `.batch_rows (pipeline text, generation bigint, view_name text, key text, bucket bigint,
			count bigint, sum double, distinct_values set<text>, PRIMARY KEY ((pipeline, generation, view_name, key), bucket))`,
		`CREATE TABLE IF NOT EXISTS ` + Keyspace + `.batch_keys (pipeline text, generation bigint, view_name text, key text,
			PRIMARY KEY ((pipeline, generation), view_name, key))`,
		`CREATE TABLE IF NOT EXISTS ` + Keyspace + `.batch_generations (pipeline text, generation bigint, watermark map<int, bigint>,
			PRIMARY KEY (pipeline, generation))`,
		`CREATE TABLE IF NOT EXISTS ` + Keyspace + `.batch_current (pipeline text PRIMARY KEY, generation bigint, watermark map<int, bigint>)`,
	} {
		if err := s.Query(q).WithContext(ctx).Exec(); err != nil {
			s.Close()
			return nil, fmt.Errorf("store: %s: %w", q, err)
		}
	}
	return &Cassandra{s: s, pipeline: pipeline}, nil
}

// Close ends the session.
func (c *Cassandra) Close() { c.s.Close() }

// Put writes b as a new generation, not read by queries until Swap, and
// lists it as complete once all its rows are written.
func (c *Cassandra) Put(ctx context.Context, b *view.Batch) (int64, error) {
	gen := time.Now().UnixNano()
	type part struct{ view, key string }
	parts := map[part][]view.Row{}
	for r := range b.Rows {
		p := part{r.View, r.Key}
		parts[p] = append(parts[p], r)
	}
	work := make(chan part)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if err := c.putPartition(ctx, gen, p.view, p.key, parts[p], b.Rows); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	for p := range parts {
		work <- p
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		c.drop(ctx, gen)
		return 0, err
	default:
	}
	if err := c.s.Query(`INSERT INTO `+Keyspace+`.batch_generations (pipeline, generation, watermark) VALUES (?, ?, ?)`,
		c.pipeline, gen, wireWatermark(b.Watermark)).WithContext(ctx).Exec(); err != nil {
		c.drop(ctx, gen)
		return 0, fmt.Errorf("store: completing generation %d: %w", gen, err)
	}
	return gen, nil
}

func wireWatermark(watermark map[int32]int64) map[int]int64 {
	wm := make(map[int]int64, len(watermark))
	for p, o := range watermark {
		wm[int(p)] = o
	}
	return wm
}

// putPartition writes one view's rows for one key, and lists the key.
func (c *Cassandra) putPartition(ctx context.Context, gen int64, v, key string, rows []view.Row, t view.Table) error {
	if err := c.s.Query(`INSERT INTO `+Keyspace+`.batch_keys (pipeline, generation, view_name, key) VALUES (?, ?, ?, ?)`,
		c.pipeline, gen, v, key).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("store: listing view %s key %q: %w", v, key, err)
	}
	// One partition: an unlogged batch costs one round trip and one
	// mutation on its replicas.
	bt := c.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	for _, r := range rows {
		a := t[r]
		var distinct []string
		for d := range a.Distinct {
			distinct = append(distinct, d)
		}
		bt.Query(`INSERT INTO `+Keyspace+`.batch_rows (pipeline, generation, view_name, key, bucket, count, sum, distinct_values) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			c.pipeline, gen, v, key, r.Bucket, a.Count, a.Sum, distinct)
	}
	if err := c.s.ExecuteBatch(bt); err != nil {
		return fmt.Errorf("store: writing view %s key %q: %w", v, key, err)
	}
	return nil
}

// Swap makes gen, with its watermark, the current generation, unless
// the current one is newer (another server of the pipeline swapped in a
// later batch view). The change is a compare-and-set (a lightweight
// transaction on the generation read), so two servers swapping at once
// cannot leave the older generation current: the one that loses reads
// again and decides again.
func (c *Cassandra) Swap(ctx context.Context, gen int64, watermark map[int32]int64) error {
	const tries = 20
	for i := 0; i < tries; i++ {
		cur, cwm, ok, err := c.Current(ctx)
		if err != nil {
			return err
		}
		if ok && (cur == gen || before(wireWatermark(watermark), gen, wireWatermark(cwm), cur)) {
			return nil // already current, or a newer one is
		}
		var q *gocql.Query
		if !ok {
			q = c.s.Query(`INSERT INTO `+Keyspace+`.batch_current (pipeline, generation, watermark) VALUES (?, ?, ?) IF NOT EXISTS`,
				c.pipeline, gen, wireWatermark(watermark))
		} else {
			q = c.s.Query(`UPDATE `+Keyspace+`.batch_current SET generation = ?, watermark = ? WHERE pipeline = ? IF generation = ?`,
				gen, wireWatermark(watermark), c.pipeline, cur)
		}
		applied, err := q.WithContext(ctx).MapScanCAS(map[string]any{})
		if err != nil {
			return fmt.Errorf("store: making generation %d current: %w", gen, err)
		}
		if applied {
			return nil
		}
	}
	return fmt.Errorf("store: making generation %d current: the current generation changed under %d tries", gen, tries)
}

// staleAfter is how old a generation never completed must be before a
// swap deletes it: far longer than a Put may take, so that one still
// being written is never deleted.
const staleAfter = time.Hour

// DropOthers deletes the complete generations older than gen (by their
// watermarks; equal watermarks by when they were begun), and those begun
// more than staleAfter ago and never completed. gen must be complete.
// Generations newer than gen, or still being written, are kept.
func (c *Cassandra) DropOthers(ctx context.Context, gen int64) error {
	done, err := c.complete(ctx)
	if err != nil {
		return err
	}
	wm, ok := done[gen]
	if !ok {
		return fmt.Errorf("store: dropping generations older than %d: it is not a complete generation", gen)
	}
	all, err := c.generations(ctx)
	if err != nil {
		return err
	}
	for g := range done {
		if !slices.Contains(all, g) {
			all = append(all, g) // a generation with no rows
		}
	}
	var errs []error
	for _, g := range all {
		if g == gen {
			continue
		}
		if gwm, ok := done[g]; ok && before(gwm, g, wm, gen) ||
			!ok && time.Since(time.Unix(0, g)) > staleAfter {
			errs = append(errs, c.drop(ctx, g))
		}
	}
	return errors.Join(errs...)
}

// before reports whether generation a (watermark awm) is older than b.
// The watermarks of one pipeline's batch runs only grow, so their sums
// order them.
func before(awm map[int]int64, a int64, bwm map[int]int64, b int64) bool {
	var as, bs int64
	for _, o := range awm {
		as += o
	}
	for _, o := range bwm {
		bs += o
	}
	return as < bs || as == bs && a < b
}

// complete is the complete generations and their watermarks.
func (c *Cassandra) complete(ctx context.Context) (map[int64]map[int]int64, error) {
	it := c.s.Query(`SELECT generation, watermark FROM `+Keyspace+`.batch_generations WHERE pipeline = ?`, c.pipeline).WithContext(ctx).Iter()
	done := map[int64]map[int]int64{}
	var g int64
	var wm map[int]int64
	for it.Scan(&g, &wm) {
		done[g] = wm
		wm = nil
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("store: listing complete generations: %w", err)
	}
	return done, nil
}

// Generations lists the generations kept, oldest first: the current one,
// and one being written or not yet dropped.
func (c *Cassandra) Generations(ctx context.Context) ([]int64, error) {
	g, err := c.generations(ctx)
	slices.Sort(g)
	return g, err
}

// generations lists the generations that have keys written.
func (c *Cassandra) generations(ctx context.Context) ([]int64, error) {
	// batch_keys is small (a row per view and key of each generation
	// kept), so a scan with a filter on the partition key's first column
	// is cheap; PER PARTITION LIMIT 1 reads one row of each.
	it := c.s.Query(`SELECT pipeline, generation FROM ` + Keyspace + `.batch_keys PER PARTITION LIMIT 1`).WithContext(ctx).Iter()
	var gens []int64
	var p string
	var g int64
	for it.Scan(&p, &g) {
		if p == c.pipeline {
			gens = append(gens, g)
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("store: listing generations: %w", err)
	}
	return gens, nil
}

// drop unlists generation gen as complete, then deletes its rows, then
// its key list. Unlisting first lets Rows, which checks the listing after
// reading, tell rows read whole from rows read while being deleted.
func (c *Cassandra) drop(ctx context.Context, gen int64) error {
	if err := c.s.Query(`DELETE FROM `+Keyspace+`.batch_generations WHERE pipeline = ? AND generation = ?`, c.pipeline, gen).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("store: dropping generation %d: %w", gen, err)
	}
	it := c.s.Query(`SELECT view_name, key FROM `+Keyspace+`.batch_keys WHERE pipeline = ? AND generation = ?`, c.pipeline, gen).WithContext(ctx).Iter()
	var v, k string
	var errs []error
	for it.Scan(&v, &k) {
		if err := c.s.Query(`DELETE FROM `+Keyspace+`.batch_rows WHERE pipeline = ? AND generation = ? AND view_name = ? AND key = ?`,
			c.pipeline, gen, v, k).WithContext(ctx).Exec(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, it.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: dropping generation %d: %w", gen, err)
	}
	if err := c.s.Query(`DELETE FROM `+Keyspace+`.batch_keys WHERE pipeline = ? AND generation = ?`, c.pipeline, gen).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("store: dropping generation %d: %w", gen, err)
	}
	return nil
}

// Current is the current generation and its watermark (ok false before
// the first Swap).
func (c *Cassandra) Current(ctx context.Context) (gen int64, watermark map[int32]int64, ok bool, err error) {
	var wm map[int]int64
	err = c.s.Query(`SELECT generation, watermark FROM `+Keyspace+`.batch_current WHERE pipeline = ?`, c.pipeline).WithContext(ctx).Scan(&gen, &wm)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("store: the current generation: %w", err)
	}
	watermark = make(map[int32]int64, len(wm))
	for p, o := range wm {
		watermark[int32(p)] = o
	}
	return gen, watermark, true, nil
}

// ErrGone is Rows' error for a generation that is not complete: deleted
// by a newer one's swap, or never completed.
var ErrGone = errors.New("not a complete generation of the batch views (a newer batch view's swap deleted it, or it was never completed)")

// Rows reads generation gen's rows of view v for key; gen must still be
// listed as complete once they are read.
func (c *Cassandra) Rows(ctx context.Context, gen int64, v, key string) (view.Table, error) {
	it := c.s.Query(`SELECT bucket, count, sum, distinct_values FROM `+Keyspace+`.batch_rows WHERE pipeline = ? AND generation = ? AND view_name = ? AND key = ?`,
		c.pipeline, gen, v, key).WithContext(ctx).Iter()
	t := view.Table{}
	var bucket, count int64
	var sum float64
	var distinct []string
	for it.Scan(&bucket, &count, &sum, &distinct) {
		a := &view.Agg{Count: count, Sum: sum}
		if len(distinct) > 0 {
			a.Distinct = make(map[string]struct{}, len(distinct))
			for _, d := range distinct {
				a.Distinct[d] = struct{}{}
			}
		}
		t[view.Row{View: v, Key: key, Bucket: bucket}] = a
		distinct = nil
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("store: reading view %s key %q: %w", v, key, err)
	}
	var g int64
	err := c.s.Query(`SELECT generation FROM `+Keyspace+`.batch_generations WHERE pipeline = ? AND generation = ?`, c.pipeline, gen).WithContext(ctx).Scan(&g)
	if errors.Is(err, gocql.ErrNotFound) {
		return nil, fmt.Errorf("store: reading view %s key %q of generation %d: %w", v, key, gen, ErrGone)
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading view %s key %q: the generation's listing: %w", v, key, err)
	}
	return t, nil
}
