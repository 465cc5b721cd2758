package api

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// ParseResources parses the Mesos flag syntax for resources:
//
//	cpus:4;mem:8192;disk:10240;ports:[31000-32000];gpus:0;labels:{a,b}
//
// A name may carry a static reservation role, "cpus(analytics):2"; "*" is the
// unreserved default. Scalars are numbers, ranges "[a-b,c-d]", sets "{x,y}".
// The input may also be a JSON array of Resource objects, as Mesos allows.
func ParseResources(text string) (mesos.Resources, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	if strings.HasPrefix(text, "[") {
		var rs []mesos.Resource
		if err := unmarshalJSONArray(text, &rs); err != nil {
			return nil, fmt.Errorf("resources: bad JSON: %w", err)
		}
		for i := range rs {
			if err := checkJSONResource(&rs[i]); err != nil {
				return nil, fmt.Errorf("resources: JSON element %d: %w", i, err)
			}
		}
		return mesos.Resources(rs), nil
	}
	var out mesos.Resources
	for _, part := range strings.Split(text, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i := strings.Index(part, ":")
		if i <= 0 {
			return nil, fmt.Errorf("resources: %q is not of the form name:value", part)
		}
		name, value := strings.TrimSpace(part[:i]), strings.TrimSpace(part[i+1:])
		role := "*"
		if j := strings.Index(name, "("); j >= 0 {
			if !strings.HasSuffix(name, ")") {
				return nil, fmt.Errorf("resources: %q has an unclosed role", name)
			}
			role = name[j+1 : len(name)-1]
			name = strings.TrimSpace(name[:j]) // "cpus (r)" names cpus
			if role == "" {
				return nil, fmt.Errorf("resources: %q has an empty role", part)
			}
		}
		if name == "" {
			return nil, fmt.Errorf("resources: %q has no name", part)
		}
		r := mesos.Resource{Name: name}
		v, err := ParseValue(value)
		if err != nil {
			return nil, fmt.Errorf("resources: %s: %w", name, err)
		}
		switch {
		case v.Scalar != nil:
			if err := checkScalar(v.Scalar.Value); err != nil {
				return nil, fmt.Errorf("resources: %s: %w", name, err)
			}
			r.Type = mesos.SCALAR.Enum()
			r.Scalar = v.Scalar
		case v.Ranges != nil:
			r.Type = mesos.RANGES.Enum()
			r.Ranges = v.Ranges
		case v.Set != nil:
			r.Type = mesos.SET.Enum()
			r.Set = v.Set
		default:
			return nil, fmt.Errorf("resources: %s: %q is neither a number, [ranges] nor {set}", name, value)
		}
		if role != "*" {
			r.Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_STATIC.Enum(), Role: &role}}
		}
		out = append(out, r)
	}
	return out, nil
}

// maxScalar is the largest resource scalar: Mesos keeps scalars in fixed
// point, thousandths in an int64; larger ones overflow the sums and the
// JSON views (roundMilli).
const maxScalar = math.MaxInt64 / 1000

// checkScalar refuses a resource scalar that is negative, not finite or
// past maxScalar.
func checkScalar(v float64) error {
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || v > maxScalar {
		return fmt.Errorf("scalar must be a finite non-negative number up to %d, got %v", int64(maxScalar), v)
	}
	return nil
}

// checkJSONResource holds a resource given as JSON to what the text
// syntax guarantees: a name, and a value of its type (a scalar finite and
// not negative).
func checkJSONResource(r *mesos.Resource) error {
	if strings.TrimSpace(r.Name) == "" {
		return fmt.Errorf("no name")
	}
	switch r.GetType() {
	case mesos.SCALAR:
		if r.Scalar == nil {
			return fmt.Errorf("%s: a SCALAR without its scalar", r.Name)
		}
		if err := checkScalar(r.Scalar.Value); err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
	case mesos.RANGES:
		if r.Ranges == nil {
			return fmt.Errorf("%s: RANGES without its ranges", r.Name)
		}
		for _, rg := range r.Ranges.Range {
			if rg.End < rg.Begin {
				return fmt.Errorf("%s: range %d-%d ends before it begins", r.Name, rg.Begin, rg.End)
			}
		}
	case mesos.SET:
		if r.Set == nil {
			return fmt.Errorf("%s: a SET without its set", r.Name)
		}
	default:
		return fmt.Errorf("%s: type %v is not SCALAR, RANGES or SET", r.Name, r.GetType())
	}
	return nil
}

// ParseValue parses one Mesos value: a scalar, "[a-b,...]" ranges, "{x,...}" a
// set, or anything else as text.
func ParseValue(s string) (mesos.Value, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "["):
		if !strings.HasSuffix(s, "]") {
			return mesos.Value{}, fmt.Errorf("ranges %q: missing ']'", s)
		}
		var rs []mesos.Value_Range
		body := strings.TrimSpace(s[1 : len(s)-1])
		if body != "" {
			for _, r := range strings.Split(body, ",") {
				ab := strings.SplitN(strings.TrimSpace(r), "-", 2)
				if len(ab) != 2 {
					return mesos.Value{}, fmt.Errorf("range %q: expected begin-end", r)
				}
				b, err1 := strconv.ParseUint(strings.TrimSpace(ab[0]), 10, 64)
				e, err2 := strconv.ParseUint(strings.TrimSpace(ab[1]), 10, 64)
				if err1 != nil || err2 != nil || e < b {
					return mesos.Value{}, fmt.Errorf("range %q: expected begin-end with begin <= end", r)
				}
				rs = append(rs, mesos.Value_Range{Begin: b, End: e})
			}
		}
		sq := mesos.Ranges(rs).Sort().Squash()
		return mesos.Value{Type: mesos.RANGES, Ranges: &mesos.Value_Ranges{Range: sq}}, nil
	case strings.HasPrefix(s, "{"):
		if !strings.HasSuffix(s, "}") {
			return mesos.Value{}, fmt.Errorf("set %q: missing '}'", s)
		}
		var items []string
		for _, it := range strings.Split(s[1:len(s)-1], ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		return mesos.Value{Type: mesos.SET, Set: &mesos.Value_Set{Item: items}}, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return mesos.Value{Type: mesos.SCALAR, Scalar: &mesos.Value_Scalar{Value: f}}, nil
	}
	return mesos.Value{Type: mesos.TEXT, Text: &mesos.Value_Text{Value: s}}, nil
}

// ParseAttributes parses "rack:r1;zone:us-east;level:3;slots:[1-4]".
func ParseAttributes(text string) ([]mesos.Attribute, error) {
	var out []mesos.Attribute
	for _, part := range strings.Split(text, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i := strings.Index(part, ":")
		if i <= 0 {
			return nil, fmt.Errorf("attributes: %q is not of the form name:value", part)
		}
		name := strings.TrimSpace(part[:i])
		v, err := ParseValue(part[i+1:])
		if err != nil {
			return nil, fmt.Errorf("attributes: %s: %w", name, err)
		}
		// NaN or an infinity would break every JSON view of the agent.
		if v.Scalar != nil && (math.IsNaN(v.Scalar.Value) || math.IsInf(v.Scalar.Value, 0)) {
			return nil, fmt.Errorf("attributes: %s: scalar must be a finite number, got %v", name, v.Scalar.Value)
		}
		a := mesos.Attribute{Name: name, Type: v.Type, Scalar: v.Scalar, Ranges: v.Ranges, Set: v.Set, Text: v.Text}
		out = append(out, a)
	}
	return out, nil
}

// FormatValue writes a value in Mesos text syntax.
func FormatValue(t mesos.Value_Type, scalar *mesos.Value_Scalar, ranges *mesos.Value_Ranges, set *mesos.Value_Set, text *mesos.Value_Text) string {
	switch t {
	case mesos.SCALAR:
		if scalar == nil {
			return "0"
		}
		return strconv.FormatFloat(scalar.Value, 'f', -1, 64)
	case mesos.RANGES:
		var parts []string
		if ranges != nil {
			for _, r := range ranges.Range {
				parts = append(parts, fmt.Sprintf("%d-%d", r.Begin, r.End))
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case mesos.SET:
		if set == nil {
			return "{}"
		}
		return "{" + strings.Join(set.Item, ", ") + "}"
	case mesos.TEXT:
		if text == nil {
			return ""
		}
		return text.Value
	}
	return ""
}

// FlattenResources renders resources the way Mesos's legacy JSON endpoints do:
// {"cpus":n,"gpus":n,"mem":n,"disk":n,"ports":"[31000-32000]"}; cpus, gpus, mem
// and disk are always present.
func FlattenResources(rs mesos.Resources) map[string]any {
	out := map[string]any{"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}
	ranges := map[string]mesos.Ranges{}
	sets := map[string][]string{}
	for _, r := range rs {
		name := r.Name
		if r.Revocable != nil {
			name += "_revocable"
		}
		switch r.GetType() {
		case mesos.SCALAR:
			f, _ := out[name].(float64)
			out[name] = roundMilli(f + r.GetScalar().GetValue())
		case mesos.RANGES:
			ranges[name] = append(ranges[name], r.GetRanges().GetRange()...)
		case mesos.SET:
			sets[name] = append(sets[name], r.GetSet().GetItem()...)
		}
	}
	for name, rr := range ranges {
		sq := rr.Sort().Squash()
		out[name] = FormatValue(mesos.RANGES, nil, &mesos.Value_Ranges{Range: sq}, nil, nil)
	}
	for name, items := range sets {
		sort.Strings(items)
		out[name] = FormatValue(mesos.SET, nil, nil, &mesos.Value_Set{Item: items}, nil)
	}
	return out
}

// FlattenAttributes renders attributes as Mesos's JSON endpoints do: scalars as
// numbers, everything else as text.
func FlattenAttributes(as []mesos.Attribute) map[string]any {
	out := map[string]any{}
	for _, a := range as {
		if a.GetType() == mesos.SCALAR {
			out[a.Name] = a.GetScalar().GetValue()
			continue
		}
		out[a.Name] = FormatValue(a.GetType(), a.Scalar, a.Ranges, a.Set, a.Text)
	}
	return out
}

// ScalarSum adds up the scalar resource called name.
func ScalarSum(rs mesos.Resources, name string) float64 {
	var sum float64
	for i := range rs {
		if rs[i].Name == name && rs[i].GetType() == mesos.SCALAR {
			sum += rs[i].GetScalar().GetValue()
		}
	}
	return roundMilli(sum)
}

// roundMilli keeps scalars at Mesos's fixed-point precision (three decimals).
func roundMilli(f float64) float64 { return math.Round(f*1000) / 1000 }

// FormatResources writes resources in the Mesos flag syntax that
// ParseResources reads ("cpus:2;mem:1024;ports:[31000-31499]").
func FormatResources(rs mesos.Resources) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		name := r.Name
		if role := r.ReservationRole(); role != "" && role != "*" {
			name += "(" + role + ")"
		}
		parts = append(parts, name+":"+FormatValue(r.GetType(), r.Scalar, r.Ranges, r.Set, nil))
	}
	return strings.Join(parts, ";")
}
