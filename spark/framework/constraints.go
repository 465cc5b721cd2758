package framework

import (
	"fmt"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Constraints are spark.mesos.constraints: attribute requirements an
// agent's offer must meet, in Spark's syntax "name:v1,v2;other;zone:a".
// A name alone needs the attribute to be there; with values, a text
// attribute must equal one of them, a scalar must be at least one of
// them, a range must hold one of them and a set must hold them all.
type Constraints map[string][]string

// ParseConstraints reads Spark's syntax; "" is no constraint.
func ParseConstraints(s string) (Constraints, error) {
	c := Constraints{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, vals, hasVals := strings.Cut(part, ":")
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("%q: a constraint without an attribute name", part)
		}
		if _, dup := c[name]; dup {
			return nil, fmt.Errorf("attribute %q is constrained twice", name)
		}
		c[name] = nil
		if !hasVals {
			continue
		}
		for _, v := range strings.Split(vals, ",") {
			if v = strings.TrimSpace(v); v != "" {
				c[name] = append(c[name], v)
			}
		}
		if len(c[name]) == 0 {
			return nil, fmt.Errorf("%q: no value after the colon", part)
		}
	}
	return c, nil
}

// Match says whether attrs (an offer's) meet every constraint, and if not
// which one fails.
func (c Constraints) Match(attrs []mesos.Attribute) (bool, string) {
	for name, want := range c {
		a := findAttribute(attrs, name)
		if a == nil {
			return false, fmt.Sprintf("no attribute %s", name)
		}
		if len(want) == 0 || attributeMeets(a, want) {
			continue
		}
		return false, fmt.Sprintf("attribute %s is not %s", name, strings.Join(want, " or "))
	}
	return true, ""
}

func findAttribute(attrs []mesos.Attribute, name string) *mesos.Attribute {
	for i := range attrs {
		if attrs[i].Name == name {
			return &attrs[i]
		}
	}
	return nil
}

func attributeMeets(a *mesos.Attribute, want []string) bool {
	switch a.GetType() {
	case mesos.SCALAR:
		have := a.GetScalar().GetValue()
		for _, w := range want {
			if f, err := strconv.ParseFloat(w, 64); err == nil && f <= have {
				return true
			}
		}
	case mesos.RANGES:
		for _, w := range want {
			n, err := strconv.ParseUint(w, 10, 64)
			if err != nil {
				continue
			}
			for _, r := range a.GetRanges().GetRange() {
				if n >= r.Begin && n <= r.End {
					return true
				}
			}
		}
	case mesos.SET:
		have := map[string]bool{}
		for _, v := range a.GetSet().GetItem() {
			have[v] = true
		}
		for _, w := range want {
			if !have[w] {
				return false
			}
		}
		return true
	default:
		for _, w := range want {
			if w == a.GetText().GetValue() {
				return true
			}
		}
	}
	return false
}
