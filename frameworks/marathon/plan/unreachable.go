package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// UnreachableStrategy is what happens to an instance whose agent the
// master has lost (TASK_UNREACHABLE): after InactiveAfterSeconds a
// replacement is launched, after ExpungeAfterSeconds the instance is
// forgotten (and killed should it come back). Disabled ("disabled" in
// the JSON) keeps waiting for the instance however long it is away.
type UnreachableStrategy struct {
	InactiveAfterSeconds float64 `json:"inactiveAfterSeconds"`
	ExpungeAfterSeconds  float64 `json:"expungeAfterSeconds"`
	Disabled             bool    `json:"-"`
}

// DefaultUnreachableStrategy is Marathon's: replace and forget an
// unreachable instance at once.
var DefaultUnreachableStrategy = UnreachableStrategy{}

// MarshalJSON writes "disabled" or the two durations, as Marathon does.
func (u UnreachableStrategy) MarshalJSON() ([]byte, error) {
	if u.Disabled {
		return []byte(`"disabled"`), nil
	}
	type plain UnreachableStrategy
	return json.Marshal(plain(u))
}

// UnmarshalJSON reads "disabled" or {inactiveAfterSeconds, expungeAfterSeconds}.
func (u *UnreachableStrategy) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s != "disabled" {
			return errors.New(`unreachableStrategy: expected "disabled" or {"inactiveAfterSeconds": N, "expungeAfterSeconds": M}, got "` + s + `"`)
		}
		*u = UnreachableStrategy{Disabled: true}
		return nil
	}
	type plain UnreachableStrategy
	p := plain(DefaultUnreachableStrategy)
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*u = UnreachableStrategy(p)
	return nil
}

func (u *UnreachableStrategy) validate(bad func(path, format string, args ...any)) {
	if u.Disabled {
		return
	}
	if u.InactiveAfterSeconds < 0 {
		bad("/unreachableStrategy/inactiveAfterSeconds", "got %g, expected 0 or more", u.InactiveAfterSeconds)
	}
	if u.ExpungeAfterSeconds < u.InactiveAfterSeconds {
		bad("/unreachableStrategy/expungeAfterSeconds", "got %g, expected at least inactiveAfterSeconds (%g)", u.ExpungeAfterSeconds, u.InactiveAfterSeconds)
	}
}

// Unreachable is what becomes of an instance unreachable for a while.
type Unreachable int

// An unreachable instance is waited for, replaced (inactive: it no
// longer counts), or expunged (forgotten; killed if it comes back).
const (
	UnreachableWait Unreachable = iota
	UnreachableInactive
	UnreachableExpunge
)

// Unreachable says what becomes of an instance of the app that has been
// unreachable for away.
func (a *App) Unreachable(away time.Duration) Unreachable {
	u := DefaultUnreachableStrategy
	if a.UnreachableStrategy != nil {
		u = *a.UnreachableStrategy
	}
	switch {
	case u.Disabled:
		return UnreachableWait
	case away >= seconds(u.ExpungeAfterSeconds):
		return UnreachableExpunge
	case away >= seconds(u.InactiveAfterSeconds):
		return UnreachableInactive
	}
	return UnreachableWait
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
