package schedule

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// CheckGraph checks the dependencies of the jobs: parents maps each job
// to its parents ([] for a scheduled job). Every parent must be a job,
// and the graph must have no cycle; the error names the unknown parent or
// the cycle.
func CheckGraph(parents map[string][]string) error {
	names := make([]string, 0, len(parents))
	for n := range parents {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, p := range parents[n] {
			if _, ok := parents[p]; !ok {
				return fmt.Errorf("job %q: parent %q is not a job", n, p)
			}
		}
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case onPath:
			i := slices.Index(path, n)
			return fmt.Errorf("dependency cycle: %s", strings.Join(append(slices.Clone(path[i:]), n), " -> "))
		case done:
			return nil
		}
		state[n] = onPath
		path = append(path, n)
		ps := slices.Sorted(slices.Values(parents[n]))
		for _, p := range ps {
			if err := visit(p); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return err
		}
	}
	return nil
}

// Ready decides whether a dependent job runs: pending holds, per parent,
// the instant of its latest success the child has not run for yet. The
// child runs once every parent has one, for the latest of those instants
// (the same instant when the parents share a schedule: the period they
// ran for).
func Ready(parents []string, pending map[string]time.Time) (time.Time, bool) {
	var at time.Time
	for _, p := range parents {
		t, ok := pending[p]
		if !ok {
			return time.Time{}, false
		}
		if t.After(at) {
			at = t
		}
	}
	return at, len(parents) > 0
}
