package stormspeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/submit"
)

// nimbusPoll is how often RunOnNimbus checks that Nimbus still lists the
// topology.
const nimbusPoll = 5 * time.Second

// OwnerKey is the topology configuration key naming the pipeline a
// topology on a real Nimbus belongs to: its work directory, which holds
// the pipeline's dataset, batch view and the bolt's reset file, so two
// pipelines of one name in different work directories are told apart.
const OwnerKey = "agora.lambda.work_dir"

// goneWait bounds how long a killed topology may take to leave Nimbus.
const goneWait = 2 * time.Minute

// TopologyName is the speed layer's topology name for spec.
func TopologyName(spec *plan.Spec) string { return "lambda-" + spec.Name + "-speed" }

// RunOnNimbus submits the speed layer's topology to the real Storm whose
// Nimbus is at nimbus and keeps it there until ctx ends, then kills it.
// Its workers run the components as the Flux file says: sh and the
// scripts of the topology jar's resources/, which exec cfg.Exe with the
// spec and the work directory. So the binary, the spec and the work
// directory must be at the same paths on every supervisor's host, and
// the bolt's query address (cfg.Addr) one it can listen on there; the
// bolt writes the address it took to AddrFile. It fails when the
// submission is refused or the topology leaves Nimbus while it runs.
//
// A topology of this pipeline already on Nimbus (left by a storm-speed
// killed -9, or by one on another host) is killed and this one submitted
// in its place; one of the same name that another pipeline owns is
// never touched, and the submission fails naming it.
func RunOnNimbus(ctx context.Context, cfg Config, nimbus string) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	top, _, _, err := Resources(cfg)
	if err != nil {
		return err
	}
	p, err := submit.Prepare(top, submit.Options{Conf: map[string]any{OwnerKey: cfg.WorkDir}})
	if err != nil {
		return fmt.Errorf("storm speed: %w", err)
	}
	c, err := client.New(nimbus, client.Options{})
	if err != nil {
		return fmt.Errorf("storm speed: %w", err)
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, goneWait+2*time.Minute)
	id, err := replace(sctx, c, p, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("storm speed: submitting %s to Nimbus %s: %w", p.Name, nimbus, err)
	}
	cfg.Log.Info("storm speed topology submitted", "nimbus", nimbus, "topology", p.Name, "id", id)

	tick := time.NewTicker(nimbusPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// Killed with no wait: the bolt's successor reads from the
			// batch watermark, so nothing in flight needs to drain.
			kctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Kill(kctx, p.Name, 0); err != nil {
				return fmt.Errorf("storm speed: killing %s on Nimbus %s: %w", p.Name, nimbus, err)
			}
			cfg.Log.Info("storm speed topology killed", "topology", p.Name)
			return nil
		case <-tick.C:
		}
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s, ok, err := c.TopologyByName(qctx, p.Name)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			cfg.Log.Warn("asking Nimbus for the topology; asking again", "nimbus", nimbus, "err", err)
		case err == nil && (!ok || s.ID != id):
			return fmt.Errorf("storm speed: topology %s (%s) is no longer on Nimbus %s", p.Name, id, nimbus)
		}
	}
}

// replace submits p after killing this pipeline's topology of that name
// if one runs. It kills rather than adopts: the running topology's
// components were started with what its submitter was given (the binary,
// the brokers, Cassandra, the bolt's address), which a restarted task
// may no longer share, and adopting would leave this task unsure what it
// runs. The price is small: a bolt started again rebuilds its realtime
// view from the batch watermark, exactly, as after any bolt death.
func replace(ctx context.Context, c *client.Client, p *submit.Prepared, cfg Config) (string, error) {
	killed, err := KillOwn(ctx, c, p.Name, cfg.WorkDir)
	if err != nil {
		return "", err
	}
	if killed {
		cfg.Log.Info("storm speed: killed this pipeline's topology left running on Nimbus, to submit it again", "topology", p.Name)
		// Its bolt's address leads nowhere soon: its worker outlives the
		// topology's listing for a while, and until the new bolt writes
		// its own, the pipeline's API would send queries and status reads
		// to the dying one.
		if err := os.Remove(AddrFile(cfg.WorkDir)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("storm speed: the killed topology's bolt address: %w", err)
		}
	}
	return p.Submit(ctx, c)
}

// Nimbus is what KillOwn asks of a Nimbus (storm/client's Client).
type Nimbus interface {
	Addr() string
	TopologyByName(ctx context.Context, name string) (client.TopologySummary, bool, error)
	TopologyConf(ctx context.Context, id string) (string, error)
	Kill(ctx context.Context, name string, wait time.Duration) error
}

// KillOwn kills the topology name on Nimbus if the pipeline whose work
// directory is workDir owns it (OwnerKey), and waits until Nimbus no
// longer lists it (at most two minutes, or until ctx ends). killed is
// false when no such topology runs. A topology of that name that another
// pipeline (or anyone else) owns is left alone, and KillOwn says whose
// it is.
//
// Nimbus kills by name but the owner is checked by ID: the name is looked
// up again just before the kill, and a topology of that name with another
// ID (the checked one ended and someone submitted theirs) is not killed.
func KillOwn(ctx context.Context, c Nimbus, name, workDir string) (killed bool, err error) {
	s, ok, err := c.TopologyByName(ctx, name)
	if err != nil || !ok {
		return false, err
	}
	owner, err := topologyOwner(ctx, c, s.ID)
	switch {
	case errors.Is(err, client.ErrNotAlive):
		// Gone between the two calls, or being removed: wait below.
	case err != nil:
		return false, err
	case owner != workDir:
		if owner == "" {
			return false, fmt.Errorf("topology %s (%s) on Nimbus %s was not submitted by an agora lambda pipeline (its configuration has no %s): it is left alone; kill it or rename this pipeline",
				name, s.ID, c.Addr(), OwnerKey)
		}
		return false, fmt.Errorf("topology %s (%s) on Nimbus %s belongs to the pipeline in %s, not this one (%s): it is left alone; give this pipeline another name",
			name, s.ID, c.Addr(), owner, workDir)
	case s.Status != "KILLED":
		now, listed, err := c.TopologyByName(ctx, name)
		switch {
		case err != nil:
			return false, err
		case !listed:
			return false, nil // ended on its own since: nothing to kill
		case now.ID != s.ID:
			return false, fmt.Errorf("topology %s (%s) on Nimbus %s ended while its owner was checked, and %s of the same name runs now: it is left alone; run again to check its owner",
				name, s.ID, c.Addr(), now.ID)
		}
		if err := c.Kill(ctx, name, 0); err != nil && !errors.Is(err, client.ErrNotAlive) {
			return false, err
		}
	}
	return true, waitGone(ctx, c, name, s.ID)
}

// waitGone waits until Nimbus no longer lists topology id under name
// (another topology of that name may follow it), at most goneWait.
func waitGone(ctx context.Context, c Nimbus, name, id string) error {
	ctx, cancel := context.WithTimeout(ctx, goneWait)
	defer cancel()
	for {
		now, listed, err := c.TopologyByName(ctx, name)
		if err == nil && (!listed || now.ID != id) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topology %s (%s) was killed but Nimbus %s still lists it: %w", name, id, c.Addr(), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// topologyOwner is the OwnerKey of topology id's configuration ("" when
// it has none).
func topologyOwner(ctx context.Context, c Nimbus, id string) (string, error) {
	raw, err := c.TopologyConf(ctx, id)
	if err != nil {
		return "", err
	}
	var conf map[string]any
	if err := json.Unmarshal([]byte(raw), &conf); err != nil {
		return "", fmt.Errorf("topology %s's configuration is not JSON: %v", id, err)
	}
	owner, _ := conf[OwnerKey].(string)
	return owner, nil
}

// Topology is the speed layer's topology as its Nimbus lists it, for
// `agora lambda status`.
type Topology struct {
	Nimbus  string `json:"nimbus"`
	Name    string `json:"name"`
	ID      string `json:"id,omitempty"`
	Status  string `json:"status"` // Nimbus's (ACTIVE, KILLED, ...), or "not running"
	Workers int32  `json:"workers"`
	UptimeS int32  `json:"uptime_seconds"`
	Error   string `json:"error,omitempty"` // why Nimbus could not be asked
}

// Describe asks Nimbus for the topology name.
func Describe(ctx context.Context, c *client.Client, name string) Topology {
	t := Topology{Nimbus: c.Addr(), Name: name}
	s, ok, err := c.TopologyByName(ctx, name)
	switch {
	case err != nil:
		t.Status, t.Error = "unknown", err.Error()
	case !ok:
		t.Status = "not running"
	default:
		t.ID, t.Status, t.Workers, t.UptimeS = s.ID, s.Status, s.NumWorkers, s.UptimeSecs
	}
	return t
}
