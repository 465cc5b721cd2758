// Package ingest appends a pipeline's events from Kafka to its master
// dataset, exactly once per offset, and sends the events that do not match
// the schema to the dead-letter topic.
//
// The dataset is a directory of chunks. A chunk is the events of one
// partition between two offsets, split by event hour into files
// hour=YYYY-MM-DDTHH/p<partition>-<first>-<end>.jsonl, each line
// "OFFSET<TAB>EVENT". A chunk's files are written and synced first, then
// its commit record _commits/p<partition>-<first>-<end> is created by an
// atomic rename: the commit record is the offset commit, stored with the
// data. On start the ingester deletes the files of chunks without a commit
// record (a crash between the two) and resumes each partition at the end
// of its last committed chunk, so no offset is appended twice or skipped,
// whatever moment the previous run was killed at.
package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/agora-cluster/agora/lambda/plan"
)

// Config is one ingester.
type Config struct {
	Spec *plan.Spec
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Dir is the master dataset's directory.
	Dir string
	// MaxChunk bounds the events of one chunk (default 4,096); a chunk is
	// also cut when a fetch brings nothing more.
	MaxChunk int
}

// Stats count what an ingester did.
type Stats struct {
	Appended   int64 `json:"appended"`    // events appended to the dataset
	DeadLetter int64 `json:"dead_letter"` // events sent to the dead-letter topic
	Chunks     int64 `json:"chunks"`      // chunks committed
}

// Ingester appends one pipeline's input topic to its dataset.
type Ingester struct {
	cfg                    Config
	cl                     *kgo.Client
	appended, dead, chunks atomic.Int64
}

// Stats are what the dataset holds: what earlier runs committed and what
// this ingester appended since (safe from any goroutine).
func (in *Ingester) Stats() Stats {
	return Stats{Appended: in.appended.Load(), DeadLetter: in.dead.Load(), Chunks: in.chunks.Load()}
}

// New recovers the dataset (dropping uncommitted chunks) and returns an
// ingester that resumes each partition after its last committed offset.
func New(cfg Config) (*Ingester, error) {
	if cfg.Spec == nil || len(cfg.Brokers) == 0 || cfg.Dir == "" {
		return nil, errors.New("ingest: a spec, brokers and a dataset directory are needed")
	}
	if cfg.MaxChunk <= 0 {
		cfg.MaxChunk = 4096
	}
	next, err := Recover(cfg.Dir)
	if err != nil {
		return nil, err
	}
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < int32(cfg.Spec.Input.Partitions); p++ {
		offsets[p] = kgo.NewOffset().At(next[p])
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Spec.Input.Topic: offsets}),
		kgo.FetchMaxWait(500*time.Millisecond),
		// As in the speed layer: kfake answers only full fetches early.
		kgo.DisableFetchSessions(),
		// The dead-letter topic is made on first use.
		kgo.AllowAutoTopicCreation())
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	// The counts start at what the dataset holds, so that a pipeline
	// started again on it (or after a kill -9) reports every event
	// ingested, not only this run's.
	held, err := DatasetStats(cfg.Dir)
	if err != nil {
		cl.Close()
		return nil, err
	}
	in := &Ingester{cfg: cfg, cl: cl}
	in.appended.Store(held.Appended)
	in.dead.Store(held.DeadLetter)
	in.chunks.Store(held.Chunks)
	return in, nil
}

// Close ends the ingester's Kafka client.
func (in *Ingester) Close() { in.cl.Close() }

// Run appends until ctx ends; it returns ctx's error, or the first error
// that stops it (a full disk, a dead-letter topic that refuses writes).
func (in *Ingester) Run(ctx context.Context) error {
	for {
		if err := in.Poll(ctx); err != nil {
			return err
		}
	}
}

// Poll fetches once and commits what came as one chunk per partition.
func (in *Ingester) Poll(ctx context.Context) error {
	fs := in.cl.PollRecords(ctx, in.cfg.MaxChunk)
	// What was fetched is committed even if ctx ended meanwhile: the
	// client will not return those records again.
	var err error
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if err == nil && len(p.Records) > 0 {
			err = in.commit(context.WithoutCancel(ctx), p.Partition, p.Records)
		}
	})
	if err != nil {
		return err
	}
	for _, e := range fs.Errors() {
		if !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded) {
			return fmt.Errorf("ingest: fetching %s[%d]: %w", e.Topic, e.Partition, e.Err)
		}
	}
	return ctx.Err()
}

// commit appends one partition's records as a chunk: dead letters first
// (acknowledged by Kafka), then the chunk's files, then its commit record.
func (in *Ingester) commit(ctx context.Context, part int32, recs []*kgo.Record) error {
	first, end := recs[0].Offset, recs[len(recs)-1].Offset+1
	byHour := map[string][]string{}
	var dead []*kgo.Record
	for _, r := range recs {
		ev, err := in.cfg.Spec.ParseEvent(r.Value)
		if err != nil {
			dead = append(dead, &kgo.Record{Topic: in.cfg.Spec.Input.DeadLetterTopic, Key: r.Key, Value: r.Value,
				Headers: []kgo.RecordHeader{{Key: "error", Value: []byte(err.Error())},
					{Key: "offset", Value: []byte(fmt.Sprintf("%d/%d", part, r.Offset))}}})
			continue
		}
		h := ev.Time.UTC().Format("2006-01-02T15")
		byHour[h] = append(byHour[h], strconv.FormatInt(r.Offset, 10)+"\t"+string(r.Value))
	}
	if len(dead) > 0 {
		if err := in.cl.ProduceSync(ctx, dead...).FirstErr(); err != nil {
			return fmt.Errorf("ingest: dead-letter topic %s: %w", in.cfg.Spec.Input.DeadLetterTopic, err)
		}
	}
	name := fmt.Sprintf("p%d-%d-%d", part, first, end)
	for _, h := range slices.Sorted(maps.Keys(byHour)) {
		if err := writeFile(filepath.Join(in.cfg.Dir, "hour="+h), name+".jsonl", strings.Join(byHour[h], "\n")+"\n"); err != nil {
			return err
		}
	}
	// The commit record holds the chunk's counts, so that the dataset
	// alone says what was ingested (DatasetStats).
	if err := writeFile(filepath.Join(in.cfg.Dir, "_commits"), name, fmt.Sprintf("appended=%d dead=%d\n", len(recs)-len(dead), len(dead))); err != nil {
		return err
	}
	in.appended.Add(int64(len(recs) - len(dead)))
	in.dead.Add(int64(len(dead)))
	in.chunks.Add(1)
	return nil
}

// writeFile creates dir/name with data, durably: a temporary file synced
// and renamed, and the directory synced.
func writeFile(dir, name, data string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-")
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("ingest: writing %s: %w", filepath.Join(dir, name), err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

var chunkRE = regexp.MustCompile(`^p(\d+)-(\d+)-(\d+)(\.jsonl)?$`)

// Recover deletes what uncommitted chunks left in dir (and temporary
// files) and returns each partition's next offset: the end of its last
// committed chunk.
func Recover(dir string) (map[int32]int64, error) {
	committed, next, err := commits(dir)
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		base := d.Name()
		if strings.HasPrefix(base, ".tmp-") {
			return os.Remove(path)
		}
		if filepath.Base(filepath.Dir(path)) == "_commits" {
			return nil
		}
		if m := chunkRE.FindStringSubmatch(base); m != nil && !committed[strings.TrimSuffix(base, ".jsonl")] {
			return os.Remove(path)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ingest: recovering %s: %w", dir, err)
	}
	return next, nil
}

// Committed is each partition's next offset in dir, the end of its last
// committed chunk, without changing anything: unlike Recover it is safe
// while an ingester appends to dir (the batch layer and the status use it).
func Committed(dir string) (map[int32]int64, error) {
	_, next, err := commits(dir)
	return next, err
}

// commits reads dir's commit records: the names of the committed chunks,
// and each partition's next offset (the end of its last committed chunk).
func commits(dir string) (committed map[string]bool, next map[int32]int64, err error) {
	committed, next = map[string]bool{}, map[int32]int64{}
	ents, err := os.ReadDir(filepath.Join(dir, "_commits"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("ingest: %w", err)
	}
	for _, e := range ents {
		m := chunkRE.FindStringSubmatch(e.Name())
		if m == nil || m[4] != "" {
			continue
		}
		committed[e.Name()] = true
		p, _ := strconv.Atoi(m[1])
		end, _ := strconv.ParseInt(m[3], 10, 64)
		if end > next[int32(p)] {
			next[int32(p)] = end
		}
	}
	return committed, next, nil
}

// DatasetStats counts what the committed chunks of dir hold, read from
// their commit records alone. It changes nothing in dir.
func DatasetStats(dir string) (Stats, error) {
	var st Stats
	ents, err := os.ReadDir(filepath.Join(dir, "_commits"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("ingest: %w", err)
	}
	for _, e := range ents {
		m := chunkRE.FindStringSubmatch(e.Name())
		if m == nil || m[4] != "" {
			continue
		}
		first, _ := strconv.ParseInt(m[2], 10, 64)
		end, _ := strconv.ParseInt(m[3], 10, 64)
		data, err := os.ReadFile(filepath.Join(dir, "_commits", e.Name()))
		if err != nil {
			return st, fmt.Errorf("ingest: %w", err)
		}
		// Records without counts (older ones) count every offset as appended.
		appended, dead := end-first, int64(0)
		if s := strings.TrimSpace(string(data)); s != "" {
			if _, err := fmt.Sscanf(s, "appended=%d dead=%d", &appended, &dead); err != nil {
				return st, fmt.Errorf("ingest: the commit record %s: %q is not \"appended=N dead=M\"", e.Name(), s)
			}
		}
		st.Chunks++
		st.Appended += appended
		st.DeadLetter += dead
	}
	return st, nil
}

// CommittedFiles are the files of dir's committed chunks (what Read reads).
func CommittedFiles(dir string) ([]string, error) {
	committed := map[string]bool{}
	ents, err := os.ReadDir(filepath.Join(dir, "_commits"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		committed[e.Name()] = true
	}
	files, err := filepath.Glob(filepath.Join(dir, "hour=*", "p*.jsonl"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, path := range files {
		if base := filepath.Base(path); chunkRE.MatchString(base) && committed[strings.TrimSuffix(base, ".jsonl")] {
			out = append(out, path)
		}
	}
	return out, nil
}

// Line is one event of the dataset.
type Line struct {
	Partition int32
	Offset    int64
	Event     []byte
}

// Read calls each for every committed event of dir whose offset is below
// its partition's watermark (all of them with a nil watermark).
func Read(dir string, watermark map[int32]int64, each func(Line) error) error {
	committed := map[string]bool{}
	ents, err := os.ReadDir(filepath.Join(dir, "_commits"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		committed[e.Name()] = true
	}
	hours, err := filepath.Glob(filepath.Join(dir, "hour=*", "p*.jsonl"))
	if err != nil {
		return err
	}
	for _, path := range hours {
		base := filepath.Base(path)
		m := chunkRE.FindStringSubmatch(base)
		if m == nil || !committed[strings.TrimSuffix(base, ".jsonl")] {
			continue
		}
		p64, _ := strconv.ParseInt(m[1], 10, 32)
		part := int32(p64)
		if err := readChunk(path, func(off int64, ev []byte) error {
			if watermark != nil && off >= watermark[part] {
				return nil
			}
			return each(Line{Partition: part, Offset: off, Event: ev})
		}); err != nil {
			return err
		}
	}
	return nil
}

func readChunk(path string, each func(int64, []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		off, ev, ok := strings.Cut(sc.Text(), "\t")
		n, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("%s: a line without its offset: %.80q", path, sc.Text())
		}
		if err := each(n, []byte(ev)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// EnsureTopics creates the pipeline's input topic with its partitions and
// its dead-letter topic, if they do not exist yet.
func EnsureTopics(ctx context.Context, brokers []string, spec *plan.Spec) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for _, t := range []struct {
		name       string
		partitions int32
	}{{spec.Input.Topic, int32(spec.Input.Partitions)}, {spec.Input.DeadLetterTopic, 1}} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = t.name
		rt.NumPartitions = t.partitions
		rt.ReplicationFactor = -1 // the broker's default
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("ingest: creating topics: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("ingest: creating topic %s: %w", t.Topic, err)
		}
	}
	return nil
}
