package cql

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/agora-cluster/agora/frameworks/bench"
)

// Result is one pass of a workload: how many operations, how fast, and
// their latency as the client saw it.
type Result struct {
	Op          string  `json:"op"` // write or read
	Consistency string  `json:"consistency"`
	Ops         int     `json:"ops"`
	Errors      int     `json:"errors"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
}

// Prepare makes keyspace ks with replication factor rf and its table kv.
func Prepare(s *gocql.Session, ks string, rf int) error {
	for _, q := range []string{
		fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}`, ks, rf),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.kv (k int PRIMARY KEY, v blob)`, ks),
	} {
		if err := s.Query(q).Exec(); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// Run writes keys 0..ops-1 (op "write", 100-byte values) or reads ops
// random keys among them (op "read") in ks.kv at consistency c, with
// concurrency requests at a time.
func Run(ctx context.Context, s *gocql.Session, ks, op string, ops, concurrency int, c gocql.Consistency) (Result, error) {
	if op != "write" && op != "read" {
		return Result{}, fmt.Errorf("workload: op %q: write or read", op)
	}
	insert := fmt.Sprintf(`INSERT INTO %s.kv (k, v) VALUES (?, ?)`, ks)
	sel := fmt.Sprintf(`SELECT v FROM %s.kv WHERE k = ?`, ks)
	value := make([]byte, 100)
	lat := make([]time.Duration, ops)
	errs := make([]error, ops)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range max(concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				var err error
				if op == "write" {
					err = s.Query(insert, i, value).WithContext(ctx).Consistency(c).Exec()
				} else {
					var v []byte
					err = s.Query(sel, rand.IntN(ops)).WithContext(ctx).Consistency(c).Scan(&v)
				}
				lat[i], errs[i] = time.Since(t0), err
			}
		}()
	}
feed:
	for i := range ops {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	el := time.Since(start)
	r := Result{Op: op, Consistency: c.String(), Ops: ops, Concurrency: concurrency, Seconds: round(el.Seconds())}
	var first error
	for _, err := range errs {
		if err != nil {
			r.Errors++
			if first == nil {
				first = err
			}
		}
	}
	r.OpsPerSec = round(float64(ops-r.Errors) / el.Seconds())
	r.P50Ms = ms(bench.Percentile(lat, 50))
	r.P99Ms = ms(bench.Percentile(lat, 99))
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	if first != nil {
		return r, fmt.Errorf("workload: %d of %d %ss failed; the first: %w", r.Errors, ops, op, first)
	}
	return r, nil
}

func round(f float64) float64 { return math.Round(f*100) / 100 }

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
