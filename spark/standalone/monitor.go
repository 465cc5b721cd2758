package standalone

import (
	"context"
	"net"
	"strconv"
	"time"
)

// monitor reads the Master's web UI every PollInterval while the Master
// answers, and adds or releases workers by what it shows.
func (s *Scheduler) monitor(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		var ui string
		if m := s.master; m != nil && m.Ready {
			ui = "http://" + net.JoinHostPort(m.Hostname, strconv.FormatUint(m.UIPort, 10))
		}
		s.mu.Unlock()
		if ui == "" {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := fetchState(pctx, s.http, ui)
		cancel()
		if err != nil {
			s.log.Debug("read the standalone Master's state", "err", err)
			continue
		}
		for _, id := range s.rebalance(st, time.Now()) {
			s.killDaemon(id)
		}
	}
}

// rebalance takes in the Master's state: which workers registered and
// which are idle, how many cores the applications wait for. While they
// wait for more than the workers give, the target grows (up to
// WorkersMax); with nothing waiting, workers idle for IdleTimeout are
// released (down to WorkersMin). It returns the workers' tasks to kill,
// marked as killed.
func (s *Scheduler) rebalance(st *MasterState, now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	pending := 0
	var kill []string
	for _, w := range s.workers {
		if !w.active() || w.Killed {
			continue
		}
		ws, ok := registered(st, w)
		w.CoresUsed = ws.CoresUsed
		switch {
		case !ok && !w.Ready && now.Sub(w.Launched) > registerWithin:
			// Its cores would count as coming for ever: killed, it
			// ends, and another is launched.
			w.Killed = true
			kill = append(kill, w.TaskID)
			s.log.Warn("a standalone Worker did not register: killing it", "task", w.TaskID, "launched", w.Launched)
		case !ok:
			if !w.Ready {
				pending += w.Cores
			}
		case !w.Ready:
			w.Ready, w.SparkID = true, ws.ID
			w.idleSince = now
			s.log.Info("standalone Worker registered", "task", w.TaskID, "worker", ws.ID, "cores", ws.Cores, "mem_mb", ws.Memory)
		case ws.CoresUsed > 0:
			w.idleSince = time.Time{}
		case w.idleSince.IsZero():
			w.idleSince = now
		}
	}
	if len(kill) > 0 {
		s.reviveLocked() // for their replacements
	}
	unmet := unmetCores(st, pending)
	s.apps, s.unmet = st.ActiveApps, unmet
	active := s.activeWorkersLocked()
	if unmet > 0 {
		per := s.cfg.WorkerCores
		if per == 0 {
			per = max(1, s.lastCores)
		}
		want := s.cfg.WorkersMax
		if more := (unmet + per - 1) / per; more < s.cfg.WorkersMax {
			want = min(s.cfg.WorkersMax, active+more)
		}
		if want > s.target {
			s.log.Info("applications wait for cores: adding workers", "unmet_cores", unmet, "workers", active, "target", want)
			s.target = want
			s.reviveLocked()
		}
		return kill
	}
	for _, w := range s.workers {
		if active <= s.cfg.WorkersMin {
			break
		}
		if !w.active() || w.Killed || !w.Ready || w.idleSince.IsZero() || now.Sub(w.idleSince) < s.cfg.IdleTimeout {
			continue
		}
		w.Killed = true
		active--
		s.target = max(s.cfg.WorkersMin, min(s.target, active))
		kill = append(kill, w.TaskID)
		s.log.Info("releasing an idle standalone Worker", "task", w.TaskID, "worker", w.SparkID, "idle", now.Sub(w.idleSince).Round(time.Second), "target", s.target)
	}
	return kill
}

// registered finds w among the Master's alive workers (by host and port).
func registered(st *MasterState, w *Daemon) (WorkerState, bool) {
	for _, ws := range st.Workers {
		if ws.State == "ALIVE" && uint64(ws.Port) == w.Port && ws.Host == w.Hostname {
			return ws, true
		}
	}
	return WorkerState{}, false
}
