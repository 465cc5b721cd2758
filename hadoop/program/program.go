// Package program holds the built-in map and reduce programs: Go
// functions a job names instead of a Streaming executable (as Hadoop jobs
// name Java classes), run by the TaskTracker in its own process on the
// same path as a Streaming process: records in through Write, out
// through the task's Emit. Packages register theirs in init (TeraGen and
// TeraValidate in hadoop/terasort, as `agora:teragen` and
// `agora:teravalidate`); a binary runs the programs of the packages it
// links.
package program

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/agora-cluster/agora/hadoop/conf"
)

// Prefix starts the name of every built-in program.
const Prefix = "agora:"

// Task is what a program instance gets: the task's configuration (with
// the attempt's properties: map.input.file, mapreduce.task.partition,
// ...) and where its output and reports go.
type Task struct {
	Conf conf.Conf
	// Emit writes an output record; the slices may be reused after it
	// returns.
	Emit func(key, value []byte) error
	// Counter adds to a counter of the attempt.
	Counter func(group, name string, n int64)
	// Status sets the attempt's status line.
	Status func(status string)
}

// Processor is a running program: Write gets every input record in
// order (for a reduce, sorted by key), Close ends the input and flushes
// what the program emits last.
type Processor interface {
	Write(key, value []byte) error
	Close() error
}

// Start starts one instance of a program for one task.
type Start func(ctx context.Context, t Task) (Processor, error)

// Program is a built-in; either side may be nil.
type Program struct {
	Map    Start
	Reduce Start
}

var (
	mu       sync.RWMutex
	programs = map[string]Program{}
)

// Register adds a program under name, which must start with Prefix.
func Register(name string, p Program) {
	if !strings.HasPrefix(name, Prefix) || len(name) == len(Prefix) {
		panic(fmt.Sprintf("program name %q must start with %q", name, Prefix))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := programs[name]; dup {
		panic("program " + name + " registered twice")
	}
	programs[name] = p
}

// Lookup finds a program.
func Lookup(name string) (Program, bool) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := programs[name]
	return p, ok
}

// Names lists the registered programs.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(programs))
	for n := range programs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
