package allocator

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// res parses a small subset of the Mesos resource syntax for tests:
// "cpus:4;mem:1024;ports:[31000-31010,31020-31030];cpus(eng):2".
func res(t testing.TB, text string) mesos.Resources {
	t.Helper()
	var out mesos.Resources
	for _, part := range strings.Split(text, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, ":")
		if !ok {
			t.Fatalf("bad resource %q", part)
		}
		var r mesos.Resource
		if i := strings.Index(name, "("); i >= 0 {
			role := strings.TrimSuffix(name[i+1:], ")")
			name = name[:i]
			r.Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_STATIC.Enum(), Role: &role}}
		}
		r.Name = name
		if strings.HasPrefix(value, "[") {
			var rs []mesos.Value_Range
			for _, x := range strings.Split(strings.Trim(value, "[]"), ",") {
				lo, hi, _ := strings.Cut(x, "-")
				b, err1 := strconv.ParseUint(lo, 10, 64)
				e, err2 := strconv.ParseUint(hi, 10, 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("bad range %q", x)
				}
				rs = append(rs, mesos.Value_Range{Begin: b, End: e})
			}
			r.Type = mesos.RANGES.Enum()
			r.Ranges = &mesos.Value_Ranges{Range: rs}
		} else {
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("bad scalar %q", part)
			}
			r.Type = mesos.SCALAR.Enum()
			r.Scalar = &mesos.Value_Scalar{Value: f}
		}
		out = append(out, r)
	}
	return out
}

// allocated returns rs with allocation_info.role set.
func allocated(rs mesos.Resources, role string) mesos.Resources {
	out := make(mesos.Resources, len(rs))
	copy(out, rs)
	for i := range out {
		r := role
		out[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: &r}
	}
	return out
}

// qty sums resources into "name" or "name(role)" keyed quantities; ports
// count one per port.
func qty(rs mesos.Resources) map[string]float64 {
	m := map[string]float64{}
	for _, r := range rs {
		key := r.Name
		if rr := reservationRole(&r); rr != "" {
			key += "(" + rr + ")"
		}
		switch r.GetType() {
		case mesos.SCALAR:
			m[key] += r.GetScalar().GetValue()
		case mesos.RANGES:
			for _, x := range r.GetRanges().GetRange() {
				m[key] += float64(x.End - x.Begin + 1)
			}
		}
	}
	return m
}

// portsOf lists every port in rs.
func portsOf(rs mesos.Resources) []uint64 {
	var ps []uint64
	for _, r := range rs {
		if r.GetType() == mesos.RANGES {
			for _, x := range r.GetRanges().GetRange() {
				for p := x.Begin; p <= x.End; p++ {
					ps = append(ps, p)
				}
			}
		}
	}
	return ps
}

// within reports whether a ⊆ b by quantity and by port.
func within(a, b mesos.Resources) bool {
	qb := qty(b)
	for k, v := range qty(a) {
		if v > qb[k]+1e-9 {
			return false
		}
	}
	in := map[uint64]bool{}
	for _, p := range portsOf(b) {
		in[p] = true
	}
	for _, p := range portsOf(a) {
		if !in[p] {
			return false
		}
	}
	return true
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func fmtQty(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s:%g;", k, m[k])
	}
	return b.String()
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// byFramework indexes offers by framework ID.
func byFramework(offers []Offer) map[string][]Offer {
	m := map[string][]Offer{}
	for _, o := range offers {
		m[o.FrameworkID] = append(m[o.FrameworkID], o)
	}
	return m
}

// declineAll recovers every offer with the given filter.
func declineAll(a *Allocator, offers []Offer, refuse time.Duration, now time.Time) {
	for _, o := range offers {
		a.Recover(o.FrameworkID, o.AgentID, o.Resources, refuse, now)
	}
}
