package stormspeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/agora-cluster/agora/lambda/batch"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
)

// SpoutConfig is one Kafka spout.
type SpoutConfig struct {
	Spec    *plan.Spec
	Brokers []string
	WorkDir string
	Log     *slog.Logger
}

// watermark is the batch view's watermark in workDir (none: nil).
func watermark(workDir string) (map[int32]int64, error) {
	b, err := batch.Load(pipeline.ViewFile(workDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return b.Watermark, nil
}

// reader is the spout's Kafka consumer, read again from the batch
// watermark each time the bolt's reset file changes.
type reader struct {
	cfg   SpoutConfig
	cl    *kgo.Client
	reset string // the reset file's content when the reader started
	recs  []*kgo.Record
}

func (r *reader) open() error {
	if r.cl != nil {
		r.cl.Close()
	}
	b, _ := os.ReadFile(resetFile(r.cfg.WorkDir))
	r.reset = string(b)
	wm, err := watermark(r.cfg.WorkDir)
	if err != nil {
		return err
	}
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < int32(r.cfg.Spec.Input.Partitions); p++ {
		offsets[p] = kgo.NewOffset().At(wm[p])
	}
	r.cl, err = kgo.NewClient(kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Spec.Input.Topic: offsets}),
		kgo.FetchMaxWait(50*time.Millisecond), kgo.DisableFetchSessions())
	if err != nil {
		return fmt.Errorf("storm spout: %w", err)
	}
	r.recs = nil
	r.cfg.Log.Info("storm spout reading", "topic", r.cfg.Spec.Input.Topic, "from", wm)
	return nil
}

// reopened reports whether the bolt restarted, and if so reads again.
func (r *reader) reopened() (bool, error) {
	b, _ := os.ReadFile(resetFile(r.cfg.WorkDir))
	if string(b) == r.reset {
		return false, nil
	}
	return true, r.open()
}

// next returns up to n records, waiting at most wait for the first.
func (r *reader) next(n int, wait time.Duration) ([]*kgo.Record, error) {
	if len(r.recs) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := r.cl.PollRecords(ctx, 1000)
		cancel()
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) && !errors.Is(e.Err, context.Canceled) {
				return nil, fmt.Errorf("storm spout: fetching %s[%d]: %w", e.Topic, e.Partition, e.Err)
			}
		}
		r.recs = fs.Records()
	}
	n = min(n, len(r.recs))
	out := r.recs[:n]
	r.recs = r.recs[n:]
	return out, nil
}

type spoutCommand struct {
	Command string `json:"command"`
	ID      any    `json:"id"`
}

type emit struct {
	Command     string `json:"command"`
	ID          string `json:"id"`
	Tuple       []any  `json:"tuple"`
	NeedTaskIDs bool   `json:"need_task_ids"`
}

func tupleOf(rec *kgo.Record) emit {
	return emit{Command: "emit", ID: strconv.Itoa(int(rec.Partition)) + ":" + strconv.FormatInt(rec.Offset, 10),
		Tuple: []any{rec.Partition, rec.Offset, string(rec.Value)}}
}

// RunSpout is the spout: in and out are its multilang streams.
func RunSpout(cfg SpoutConfig, in io.Reader, out io.Writer) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	c, _, err := handshake(in, out)
	if err != nil {
		return err
	}
	r := &reader{cfg: cfg}
	if err := r.open(); err != nil {
		return err
	}
	defer func() { r.cl.Close() }()
	pending := map[string]emit{} // emitted, not acked yet
	lastCheck := time.Now()
	for {
		raw, err := c.read()
		if err != nil {
			return err
		}
		var m spoutCommand
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("storm spout: %w: %s", errProtocol, raw)
		}
		id := fmt.Sprint(m.ID)
		switch m.Command {
		case "next":
			if time.Since(lastCheck) > 200*time.Millisecond {
				lastCheck = time.Now()
				re, err := r.reopened()
				if err != nil {
					return err
				}
				if re {
					// The new bolt reads everything from the watermark;
					// acks of the old tuples may still come and are
					// dropped with them.
					clear(pending)
				}
			}
			recs, err := r.next(200, 50*time.Millisecond)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				e := tupleOf(rec)
				pending[e.ID] = e
				if err := c.send(e); err != nil {
					return err
				}
			}
		case "ack":
			delete(pending, id)
		case "fail":
			if e, ok := pending[id]; ok {
				if err := c.send(e); err != nil {
					return err
				}
			}
		case "activate", "deactivate":
		default:
			return fmt.Errorf("storm spout: %w: command %q", errProtocol, m.Command)
		}
		if err := c.send(map[string]string{"command": "sync"}); err != nil {
			return err
		}
	}
}
