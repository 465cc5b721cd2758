package framework

import "context"

// TrackerTokens is the umbilical token of each tracker the scheduler
// knows, by executor ID, read on the loop: tests check where the tokens
// go and that one tracker's does not speak for another's attempts.
func TrackerTokens(ctx context.Context, f *Framework) (map[string]string, error) {
	out := map[string]string{}
	err := f.call(ctx, func(context.Context) {
		for id, t := range f.trackers {
			out[id] = t.token
		}
	})
	return out, err
}
