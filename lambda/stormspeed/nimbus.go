package stormspeed

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/submit"
)

// nimbusPoll is how often RunOnNimbus checks that Nimbus still lists the
// topology.
const nimbusPoll = 5 * time.Second

// RunOnNimbus submits the speed layer's topology to the real Storm whose
// Nimbus is at nimbus and keeps it there until ctx ends, then kills it.
// Its workers run the components as the Flux file says: sh and the
// scripts of the topology jar's resources/, which exec cfg.Exe with the
// spec and the work directory. So the binary, the spec and the work
// directory must be at the same paths on every supervisor's host, and
// the bolt's query address (cfg.Addr) one it can listen on there; the
// bolt writes the address it took to AddrFile. It fails when the
// submission is refused or the topology leaves Nimbus while it runs.
func RunOnNimbus(ctx context.Context, cfg Config, nimbus string) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	top, _, _, err := Resources(cfg)
	if err != nil {
		return err
	}
	p, err := submit.Prepare(top, submit.Options{})
	if err != nil {
		return fmt.Errorf("storm speed: %w", err)
	}
	c, err := client.New(nimbus, client.Options{})
	if err != nil {
		return fmt.Errorf("storm speed: %w", err)
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	id, err := p.Submit(sctx, c)
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
