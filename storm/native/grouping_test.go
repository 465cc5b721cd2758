package native

import (
	"testing"

	"github.com/agora-cluster/agora/storm/flux"
)

func sub(t *testing.T, kind string, args []string, tasks []int) *subscriber {
	t.Helper()
	s, err := newSubscriber(flux.Stream{From: "up", To: "down", Grouping: flux.Grouping{Type: kind, Args: args}},
		tasks, []string{"word", "n"}, func(int) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func one(t *testing.T, s *subscriber, values []any, direct *int) []int {
	t.Helper()
	ts, err := s.targets(values, direct)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestFieldsGroupingSendsEqualKeysToOneTask(t *testing.T) {
	s := sub(t, flux.GroupFields, []string{"word"}, []int{3, 4, 5})
	used := map[int]bool{}
	for _, w := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		first := one(t, s, []any{w, 1}, nil)
		if len(first) != 1 {
			t.Fatalf("%q went to %v, want one task", w, first)
		}
		for n := 2; n < 6; n++ { // other fields do not matter
			if again := one(t, s, []any{w, n}, nil); again[0] != first[0] {
				t.Fatalf("%q went to task %d, then %d", w, first[0], again[0])
			}
		}
		used[first[0]] = true
	}
	if len(used) < 2 {
		t.Errorf("8 words all went to %v: fields grouping does not spread keys", used)
	}
	if _, err := s.targets([]any{}, nil); err == nil {
		t.Error("a tuple without the grouping field was routed")
	}
}

func TestAllGlobalShuffleGroupings(t *testing.T) {
	tasks := []int{7, 8, 9}
	if got := one(t, sub(t, flux.GroupAll, nil, tasks), []any{"x"}, nil); len(got) != 3 || got[0] != 7 || got[2] != 9 {
		t.Errorf("ALL went to %v, want every task %v", got, tasks)
	}
	g := sub(t, flux.GroupGlobal, nil, tasks)
	for i := 0; i < 5; i++ {
		if got := one(t, g, []any{i}, nil); len(got) != 1 || got[0] != 7 {
			t.Fatalf("GLOBAL went to %v, want the lowest task 7", got)
		}
	}
	for _, kind := range []string{flux.GroupShuffle, flux.GroupNone, flux.GroupLocalOrShuffle} {
		s, n := sub(t, kind, nil, tasks), map[int]int{}
		for i := 0; i < 300; i++ {
			n[one(t, s, []any{"same"}, nil)[0]]++
		}
		if n[7] != 100 || n[8] != 100 || n[9] != 100 {
			t.Errorf("%s spread 300 tuples as %v, want 100 each", kind, n)
		}
	}
}

func TestLocalOrShufflePrefersLocalTasks(t *testing.T) {
	s, err := newSubscriber(flux.Stream{From: "up", To: "down", Grouping: flux.Grouping{Type: flux.GroupLocalOrShuffle}},
		[]int{1, 2, 3}, []string{"x"}, func(task int) bool { return task == 2 })
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if got := one(t, s, []any{i}, nil); got[0] != 2 {
			t.Fatalf("LOCAL_OR_SHUFFLE went to %v, want the local task 2", got)
		}
	}
}

func TestDirectGroupingSendsToTheNamedTask(t *testing.T) {
	d := sub(t, flux.GroupDirect, nil, []int{4, 5, 6})
	task := 5
	if got := one(t, d, []any{"x"}, &task); len(got) != 1 || got[0] != 5 {
		t.Errorf("a direct emit to 5 went to %v", got)
	}
	if got := one(t, d, []any{"x"}, nil); len(got) != 0 {
		t.Errorf("a plain emit reached a DIRECT subscriber: %v", got)
	}
	other := 9
	if got := one(t, d, []any{"x"}, &other); len(got) != 0 {
		t.Errorf("a direct emit to task 9 reached %v", got)
	}
	if got := one(t, sub(t, flux.GroupShuffle, nil, []int{1, 2}), []any{"x"}, &task); len(got) != 0 {
		t.Errorf("a direct emit reached a SHUFFLE subscriber: %v", got)
	}
}
