package native

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync/atomic"

	"github.com/agora-cluster/agora/storm/flux"
)

// subscriber is one bolt's subscription to a stream: its tasks and how
// the stream's tuples are spread over them.
type subscriber struct {
	component string
	tasks     []int // ascending
	kind      string
	fields    []int // FIELDS: positions of the grouping fields in the tuple
	next      atomic.Uint64
	// local says whether a task runs in this worker (LOCAL_OR_SHUFFLE).
	local func(task int) bool
}

func newSubscriber(s flux.Stream, tasks []int, outFields []string, local func(int) bool) (*subscriber, error) {
	sub := &subscriber{component: s.To, tasks: tasks, kind: s.Grouping.Type, local: local}
	for _, f := range s.Grouping.Args {
		i := indexOf(outFields, f)
		if i < 0 {
			return nil, fmt.Errorf("stream %s -> %s: grouping field %q is not an output field %v", s.From, s.To, f, outFields)
		}
		sub.fields = append(sub.fields, i)
	}
	return sub, nil
}

// targets are the tasks a tuple goes to. direct is the task a direct
// emit names (nil for other emits); a direct emit goes only to a DIRECT
// subscriber owning that task, and other emits only to the others.
func (s *subscriber) targets(values []any, direct *int) ([]int, error) {
	if s.kind == flux.GroupDirect || direct != nil {
		if s.kind != flux.GroupDirect || direct == nil {
			return nil, nil
		}
		for _, t := range s.tasks {
			if t == *direct {
				return []int{t}, nil
			}
		}
		return nil, nil
	}
	switch s.kind {
	case flux.GroupAll:
		return s.tasks, nil
	case flux.GroupGlobal:
		return s.tasks[:1], nil
	case flux.GroupFields:
		h := fnv.New64a()
		for _, i := range s.fields {
			if i >= len(values) {
				return nil, fmt.Errorf("a tuple of %d values has no grouping field #%d for %q", len(values), i+1, s.component)
			}
			b, _ := json.Marshal(values[i])
			h.Write(b)
			h.Write([]byte{0})
		}
		return []int{s.tasks[mix(h.Sum64())%uint64(len(s.tasks))]}, nil
	case flux.GroupLocalOrShuffle:
		if s.local != nil {
			var local []int
			for _, t := range s.tasks {
				if s.local(t) {
					local = append(local, t)
				}
			}
			if len(local) > 0 {
				return []int{local[s.next.Add(1)%uint64(len(local))]}, nil
			}
		}
	}
	// SHUFFLE, NONE, and LOCAL_OR_SHUFFLE with no local task: round
	// robin, which spreads load as evenly as Storm's shuffle.
	return []int{s.tasks[s.next.Add(1)%uint64(len(s.tasks))]}, nil
}

// owns reports whether task is one of the subscriber's.
func (s *subscriber) owns(task int) bool {
	for _, t := range s.tasks {
		if t == task {
			return true
		}
	}
	return false
}

// mix spreads a hash's bits (splitmix64's finalizer): FNV alone leaves
// short keys that differ in one byte in the same residue.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func indexOf(xs []string, x string) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return -1
}
