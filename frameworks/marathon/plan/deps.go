package plan

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// ResolvePath makes p absolute: as it is if it starts with "/",
// otherwise relative to base, the group it is written in ("../db" in
// group "/prod/web" is "/prod/db").
func ResolvePath(base, p string) string {
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "/") {
		p = path.Join(base, p)
	}
	return CanonicalID(path.Clean(p))
}

// Parent is the group an app or group id is in ("/" for a top-level
// one).
func Parent(id string) string {
	p := path.Dir(id)
	if p == "." {
		return "/"
	}
	return p
}

// normalizeDependencies resolves the app's dependencies against its
// group, as Marathon does.
func (a *App) normalizeDependencies() {
	for i, d := range a.Dependencies {
		a.Dependencies[i] = ResolvePath(Parent(a.ID), d)
	}
}

func (a *App) validateDependencies(bad func(path, format string, args ...any)) {
	for i, d := range a.Dependencies {
		p := fmt.Sprintf("/dependencies(%d)", i)
		switch {
		case d == "/" || d == "":
			bad(p, "must name an app or a group, not the root")
		case d == a.ID:
			bad(p, "an app cannot depend on itself")
		case !validPath(d):
			bad(p, "'%s' is not a valid path (segments of lowercase letters, digits, hyphens and dots)", d)
		}
	}
}

func validPath(id string) bool {
	for _, seg := range strings.Split(strings.TrimPrefix(id, "/"), "/") {
		if !idSegment.MatchString(seg) {
			return false
		}
	}
	return true
}

// Under lists the ids (sorted) that are dep itself or in the group dep.
func Under(dep string, ids []string) []string {
	var out []string
	for _, id := range ids {
		if id == dep || strings.HasPrefix(id, strings.TrimSuffix(dep, "/")+"/") {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// DependencyCycle finds a cycle in a dependency graph (app → the apps it
// depends on) and returns it as a path that ends where it starts, or nil
// if there is none.
func DependencyCycle(graph map[string][]string) []string {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string) []string
	visit = func(n string) []string {
		state[n] = onPath
		stack = append(stack, n)
		next := slices.Clone(graph[n])
		slices.Sort(next)
		for _, m := range next {
			switch state[m] {
			case onPath:
				i := slices.Index(stack, m)
				return append(slices.Clone(stack[i:]), m)
			case unseen:
				if c := visit(m); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	nodes := make([]string, 0, len(graph))
	for n := range graph {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		if state[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}
