package local

import (
	"context"
	"errors"

	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/tasktracker"
)

// Events the attempt goroutines send to the loop.
type (
	attemptDone struct {
		id  job.AttemptID
		res tasktracker.Result
		err error
	}
	progressed struct {
		id job.AttemptID
		p  jobtracker.Progress
	}
	commitAsk struct {
		id    job.AttemptID
		reply chan bool
	}
	completionsAsk struct {
		from  int
		reply chan []jobtracker.MapCompletion
	}
	fetchFailed struct {
		reduce   job.AttemptID
		mapIndex int
	}
)

// reporter connects one attempt to the loop; it is also the reduce's view
// of map outputs.
type reporter struct {
	r  *runner
	id job.AttemptID
}

func (p *reporter) send(ctx context.Context, ev any) error {
	select {
	case p.r.events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *reporter) Report(pr jobtracker.Progress) {
	p.send(p.r.ctx, progressed{id: p.id, p: pr})
}

func (p *reporter) CanCommit(ctx context.Context) (bool, error) {
	reply := make(chan bool, 1)
	if err := p.send(ctx, commitAsk{id: p.id, reply: reply}); err != nil {
		return false, err
	}
	select {
	case ok := <-reply:
		return ok, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (p *reporter) Completions(ctx context.Context, from int) ([]jobtracker.MapCompletion, error) {
	reply := make(chan []jobtracker.MapCompletion, 1)
	if err := p.send(ctx, completionsAsk{from: from, reply: reply}); err != nil {
		return nil, err
	}
	select {
	case evs, ok := <-reply:
		if !ok {
			return nil, errors.New("the job ended")
		}
		return evs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *reporter) FetchFailed(ctx context.Context, mapIndex int) error {
	return p.send(ctx, fetchFailed{reduce: p.id, mapIndex: mapIndex})
}
