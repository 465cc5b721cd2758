package native

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// A topology is ACTIVE or INACTIVE, as in Storm: an inactive topology's
// spouts are not asked for tuples (no "next"), while the tuples in flight
// still complete and their acks and fails still reach the spouts. On each
// change a spout task's process is told, as Storm's ShellSpout tells its
// script: "activate" or "deactivate", answered with sync (storm.py calls
// the spout's activate() or deactivate()). A spout process started while
// the topology is active is told "activate" before its first "next", as
// Storm activates a spout when its executor starts.

// Status is a topology's ACTIVE or INACTIVE with the generation of the
// change that set it: a worker takes only a status of a later generation
// than the one it has, so that changes sent over separate connections
// cannot undo a later one.
type Status struct {
	Active bool
	Gen    int64
}

// String is Storm's name of the status.
func (s Status) String() string {
	if s.Active {
		return "ACTIVE"
	}
	return "INACTIVE"
}

// Encode is the status as a worker's environment carries it: ACTIVE/GEN.
func (s Status) Encode() string { return s.String() + "/" + strconv.FormatInt(s.Gen, 10) }

// ParseStatus reads an encoded status.
func ParseStatus(v string) (Status, error) {
	name, gen, ok := strings.Cut(v, "/")
	g, err := strconv.ParseInt(gen, 10, 64)
	if !ok || err != nil || g < 0 || (name != "ACTIVE" && name != "INACTIVE") {
		return Status{}, fmt.Errorf("topology status %q: want ACTIVE/N or INACTIVE/N", v)
	}
	return Status{Active: name == "ACTIVE", Gen: g}, nil
}

// Status is the topology's status in this worker.
func (r *Runtime) Status() Status {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	return r.status
}

// SetStatus takes s if it is of a later generation than the worker's
// status, and says whether it did. The spouts follow at once.
func (r *Runtime) SetStatus(s Status) bool {
	r.statusMu.Lock()
	if s.Gen <= r.status.Gen {
		r.statusMu.Unlock()
		return false
	}
	changed := s.Active != r.status.Active
	r.status = s
	r.active.Store(s.Active)
	r.statusMu.Unlock()
	if changed {
		r.log.Info("native storm: topology status changed", "topology", r.top.Name, "status", s.String(), "gen", s.Gen)
		for _, t := range r.tasks {
			if t.spout && t.wake != nil {
				select {
				case t.wake <- struct{}{}:
				default:
				}
			}
		}
	}
	return true
}

// Activate and Deactivate set the status with the next generation.
func (r *Runtime) Activate()   { r.setActive(true) }
func (r *Runtime) Deactivate() { r.setActive(false) }

func (r *Runtime) setActive(on bool) {
	r.statusMu.Lock()
	s := Status{Active: on, Gen: r.status.Gen + 1}
	r.statusMu.Unlock()
	r.SetStatus(s)
}

// Tell sends status s to the worker listening at addr (a worker's
// address among its topology's peers), retrying until ctx ends.
func Tell(ctx context.Context, addr string, s Status) error {
	b, _ := json.Marshal(wire{Kind: "status", Active: s.Active, Gen: s.Gen})
	var last error
	for {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			w := bufio.NewWriter(c)
			w.Write(append(b, '\n'))
			err = w.Flush()
			c.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("tell the worker at %s the topology is %s: %w", addr, s, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
