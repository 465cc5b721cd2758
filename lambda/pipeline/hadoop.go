package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/lambda/batch"
	"github.com/agora-cluster/agora/lambda/ingest"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/view"
)

// HadoopJob is a batch job run on agora's Hadoop framework.
type HadoopJob struct {
	Spec     *plan.Spec
	SpecPath string // the spec's file, as the map and reduce tasks read it
	Dir      string // the work directory
	Hadoop   string // the framework's API, HOST:PORT or URL
	// Exe is the agora binary the map and reduce tasks run.
	Exe string
	// Pause holds the finished view before it is written (for fault
	// tests), as does $AGORA_LAMBDA_HOLD_BATCH_UNTIL (HoldBatchEnv).
	Pause time.Duration
}

// Run submits a Streaming job — `agora lambda map` over the committed
// chunks below the watermark, `agora lambda reduce` — waits for it, and
// replaces the work directory's batch view with its output.
func (h HadoopJob) Run(ctx context.Context) (*view.Batch, string, error) {
	wm, err := batch.Watermark(DatasetDir(h.Dir))
	if err != nil {
		return nil, "", err
	}
	files, err := ingest.CommittedFiles(DatasetDir(h.Dir))
	if err != nil {
		return nil, "", err
	}
	b := &view.Batch{Watermark: wm, Rows: view.Table{}}
	jobID := ""
	if len(files) > 0 {
		out := filepath.Join(h.Dir, "jobs", fmt.Sprintf("batch-%d", time.Now().UnixNano()))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return nil, "", err
		}
		args := []string{"-output", out,
			"-mapper", fmt.Sprintf("'%s' lambda map '%s' --watermark %s", h.Exe, h.SpecPath, batch.FormatWatermark(wm)),
			"-reducer", fmt.Sprintf("'%s' lambda reduce", h.Exe)}
		for _, f := range files {
			args = append(args, "-input", f)
		}
		c := client.New(h.Hadoop)
		j, err := c.Submit(ctx, client.SubmitRequest{Args: args, Cwd: h.Dir})
		if err != nil {
			return nil, "", fmt.Errorf("batch: submitting to the Hadoop framework at %s: %w", h.Hadoop, err)
		}
		jobID = j.ID
		if j, err = c.Wait(ctx, j.ID, 250*time.Millisecond, nil); err != nil {
			return nil, jobID, fmt.Errorf("batch: Hadoop job %s: %w", jobID, err)
		}
		if j.State != jobtracker.JobSucceeded {
			return nil, jobID, fmt.Errorf("batch: Hadoop job %s ended %s: %s", jobID, j.State, j.Error)
		}
		if b.Rows, err = batch.ReadOutput(out); err != nil {
			return nil, jobID, err
		}
		defer os.RemoveAll(out)
	}
	if err := holdBeforeSwap(ctx, h.Pause); err != nil {
		return nil, jobID, err
	}
	if err := os.MkdirAll(filepath.Dir(ViewFile(h.Dir)), 0o755); err != nil {
		return nil, jobID, err
	}
	return b, jobID, batch.Save(ViewFile(h.Dir), b)
}
