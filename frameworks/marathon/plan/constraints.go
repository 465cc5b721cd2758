package plan

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The seven constraint operators.
const (
	Unique  = "UNIQUE"
	Cluster = "CLUSTER"
	GroupBy = "GROUP_BY"
	Like    = "LIKE"
	Unlike  = "UNLIKE"
	MaxPer  = "MAX_PER"
	Is      = "IS"
)

var operators = []string{Unique, Cluster, GroupBy, Like, Unlike, MaxPer, Is}

// Constraint is one parsed [field, operator, value] placement rule.
type Constraint struct {
	Field string
	Op    string
	Value string
	re    *regexp.Regexp // LIKE and UNLIKE
	n     int            // GROUP_BY and MAX_PER
}

// ParseConstraint checks one constraint as the JSON gives it.
func ParseConstraint(c []string) (Constraint, error) {
	if len(c) < 2 || len(c) > 3 {
		return Constraint{}, fmt.Errorf("a constraint is [field, operator] or [field, operator, value], not %d strings", len(c))
	}
	k := Constraint{Field: c[0], Op: strings.ToUpper(c[1])}
	if len(c) == 3 {
		k.Value = c[2]
	}
	if strings.TrimSpace(k.Field) == "" {
		return Constraint{}, fmt.Errorf("the field is empty")
	}
	switch k.Op {
	case Unique, Cluster:
	case GroupBy:
		if k.Value != "" {
			n, err := strconv.Atoi(k.Value)
			if err != nil || n < 1 {
				return Constraint{}, fmt.Errorf("GROUP_BY takes a number of groups of 1 or more, not %q", k.Value)
			}
			k.n = n
		}
	case Like, Unlike:
		if len(c) < 3 {
			return Constraint{}, fmt.Errorf("%s requires a regular expression", k.Op)
		}
		re, err := regexp.Compile("^(?:" + k.Value + ")$")
		if err != nil {
			return Constraint{}, fmt.Errorf("%s value %q is not a regular expression: %v", k.Op, k.Value, err)
		}
		k.re = re
	case MaxPer:
		n, err := strconv.Atoi(k.Value)
		if err != nil || n < 1 {
			return Constraint{}, fmt.Errorf("MAX_PER takes a number of 1 or more, not %q", k.Value)
		}
		k.n = n
	case Is:
		if len(c) < 3 {
			return Constraint{}, fmt.Errorf("IS requires a value")
		}
	default:
		return Constraint{}, fmt.Errorf("Constraint operator must be one of the following: [%s], not %q",
			strings.Join(operators, ", "), c[1])
	}
	return k, nil
}

// Agent is what constraints see of an agent: its hostname, its
// attributes as text (scalars as numbers, ranges "[a-b]", sets "{a,b}"),
// and its fault domain.
type Agent struct {
	ID     string            `json:"id"`
	Host   string            `json:"host"`
	Region string            `json:"region,omitempty"`
	Zone   string            `json:"zone,omitempty"`
	Attrs  map[string]string `json:"attributes,omitempty"`
}

// value is the agent's value for field, and whether it has one.
func (a Agent) value(field string) (string, bool) {
	switch field {
	case "hostname", "@hostname":
		return a.Host, true
	case "@region":
		return a.Region, a.Region != ""
	case "@zone":
		return a.Zone, a.Zone != ""
	}
	v, ok := a.Attrs[field]
	return v, ok
}

// Allows says whether one more instance may go on agent, given the agents
// the app's other active instances are on; when not, it says why.
func (k Constraint) Allows(agent Agent, placed []Agent) (bool, string) {
	v, ok := agent.value(k.Field)
	if !ok {
		if k.Op == Unlike {
			return true, ""
		}
		return false, fmt.Sprintf("%s: the agent has no %q", k, k.Field)
	}
	counts := map[string]int{}
	var first string
	for _, p := range placed {
		pv, ok := p.value(k.Field)
		if !ok {
			continue
		}
		if first == "" {
			first = pv
		}
		counts[pv]++
	}
	switch k.Op {
	case Unique:
		if counts[v] > 0 {
			return false, fmt.Sprintf("%s: an instance is already on %s %q", k, k.Field, v)
		}
	case Cluster:
		want := k.Value
		if want == "" {
			want = first
		}
		if want != "" && v != want {
			return false, fmt.Sprintf("%s: %s is %q, want %q", k, k.Field, v, want)
		}
	case GroupBy:
		if len(counts) < k.n {
			if counts[v] > 0 {
				return false, fmt.Sprintf("%s: waiting for %d distinct values of %s, %q is taken", k, k.n, k.Field, v)
			}
			return true, ""
		}
		least := math.MaxInt
		for _, n := range counts {
			least = min(least, n)
		}
		if counts[v] > least {
			return false, fmt.Sprintf("%s: %s %q has %d instances, another value has %d", k, k.Field, v, counts[v], least)
		}
	case Like:
		if !k.re.MatchString(v) {
			return false, fmt.Sprintf("%s: %s %q does not match", k, k.Field, v)
		}
	case Unlike:
		if k.re.MatchString(v) {
			return false, fmt.Sprintf("%s: %s %q matches", k, k.Field, v)
		}
	case MaxPer:
		if counts[v] >= k.n {
			return false, fmt.Sprintf("%s: %s %q already has %d instances", k, k.Field, v, counts[v])
		}
	case Is:
		if !sameValue(v, k.Value) {
			return false, fmt.Sprintf("%s: %s is %q", k, k.Field, v)
		}
	}
	return true, ""
}

// String is the constraint as Marathon prints it: field:OP[:value].
func (k Constraint) String() string {
	if k.Value == "" {
		return k.Field + ":" + k.Op
	}
	return k.Field + ":" + k.Op + ":" + k.Value
}

// sameValue compares as text, or as numbers at Mesos's three-decimal
// precision (half-even) when both are numbers.
func sameValue(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return math.RoundToEven(x*1000) == math.RoundToEven(y*1000)
}
