package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Action is an authorizable action, by its name in Mesos's ACL JSON.
type Action string

// The actions --acls may name, with Mesos's names. Each rule of an action
// pairs "principals" (who asks) with the action's object (see
// actionObjects): a role, a UNIX user, another principal; the actions
// whose object is "implicitly given" (agents, logs) take only ANY or NONE
// there.
const (
	RegisterFrameworks Action = "register_frameworks" // roles of the framework
	RunTasks           Action = "run_tasks"           // user a task runs as
	TeardownFrameworks Action = "teardown_frameworks" // principal of the framework
	ReserveResources   Action = "reserve_resources"   // role of the reservation
	UnreserveResources Action = "unreserve_resources" // principal that reserved
	CreateVolumes      Action = "create_volumes"      // role of the volume
	DestroyVolumes     Action = "destroy_volumes"     // principal that created it
	GetQuotas          Action = "get_quotas"          // role
	UpdateQuotas       Action = "update_quotas"       // role
	UpdateWeights      Action = "update_weights"      // role
	ViewFrameworks     Action = "view_frameworks"     // user of the framework
	ViewTasks          Action = "view_tasks"          // user of the task
	ViewExecutors      Action = "view_executors"      // user of the executor
	ViewAgents         Action = "view_agents"         // implicit (agora's: Mesos shows agents to all)
	AccessSandboxes    Action = "access_sandboxes"    // user of the executor
	MarkAgentsGone     Action = "mark_agents_gone"    // implicit
	DrainAgents        Action = "drain_agents"        // implicit
	DeactivateAgents   Action = "deactivate_agents"   // implicit
	ReactivateAgents   Action = "reactivate_agents"   // implicit
	RegisterAgents     Action = "register_agents"     // implicit: the agent's principal registers
)

// actionObjects is each action's object field in the JSON.
var actionObjects = map[Action]string{
	RegisterFrameworks: "roles",
	RunTasks:           "users",
	TeardownFrameworks: "framework_principals",
	ReserveResources:   "roles",
	UnreserveResources: "reserver_principals",
	CreateVolumes:      "roles",
	DestroyVolumes:     "creator_principals",
	GetQuotas:          "roles",
	UpdateQuotas:       "roles",
	UpdateWeights:      "roles",
	ViewFrameworks:     "users",
	ViewTasks:          "users",
	ViewExecutors:      "users",
	ViewAgents:         "agents",
	AccessSandboxes:    "users",
	MarkAgentsGone:     "agents",
	DrainAgents:        "agents",
	DeactivateAgents:   "agents",
	ReactivateAgents:   "agents",
	RegisterAgents:     "agents",
}

// unenforced are Mesos's actions agora does not check (yet): an ACL file
// naming one is refused rather than silently ignored.
var unenforced = map[string]bool{
	"get_endpoints": true, "view_roles": true, "view_flags": true,
	"access_mesos_logs": true, "resize_volume": true, "get_maintenance_schedules": true,
	"update_maintenance_schedules": true, "start_maintenances": true, "stop_maintenances": true,
	"get_maintenance_statuses": true, "launch_nested_containers": true, "view_resource_providers": true,
	"create_block_disks": true, "destroy_block_disks": true, "create_mount_disks": true, "destroy_mount_disks": true,
}

// Entity is one side of a rule: some values, or ANY, or NONE.
type Entity struct {
	Values []string `json:"values,omitempty"`
	Type   string   `json:"type,omitempty"` // "ANY", "NONE", or "" / "SOME" with values
}

type kind int

const (
	some kind = iota
	anyKind
	noneKind
)

func (e Entity) kind() kind {
	switch e.Type {
	case "ANY":
		return anyKind
	case "NONE":
		return noneKind
	}
	return some
}

func (e Entity) validate() error {
	switch e.Type {
	case "ANY", "NONE":
		if len(e.Values) > 0 {
			return fmt.Errorf("type %s takes no values", e.Type)
		}
	case "", "SOME":
		if len(e.Values) == 0 {
			return errors.New(`give "values" or "type": "ANY" / "NONE"`)
		}
	default:
		return fmt.Errorf("unknown type %q (want ANY, NONE, or values)", e.Type)
	}
	return nil
}

func (e Entity) has(v string) bool {
	for _, x := range e.Values {
		if x == v {
			return true
		}
	}
	return false
}

// rule is one entry of an action's list.
type rule struct {
	principals, object Entity
}

// ACLs are the parsed --acls: the rules per action, checked in order.
// They never change once parsed, so they are safe for concurrent use.
type ACLs struct {
	permissive bool
	rules      map[Action][]rule
}

// LoadACLs reads --acls: a file, or (as Mesos allows) the JSON itself
// when the value starts with '{'.
func LoadACLs(value string) (*ACLs, error) {
	data := []byte(value)
	if !strings.HasPrefix(strings.TrimSpace(value), "{") {
		var err error
		if data, err = os.ReadFile(strings.TrimPrefix(value, "file://")); err != nil {
			return nil, fmt.Errorf("acls file: %w", err)
		}
	}
	return ParseACLs(data)
}

// ParseACLs parses Mesos's ACL JSON. Every problem is an error naming the
// action and the rule's index (from 0, as in the JSON list): an unknown
// action, a field other than "principals" and the action's object, a
// missing one, an entity with neither values nor a type.
func ParseACLs(data []byte) (*ACLs, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if raw == nil {
		return nil, errors.New(`want a JSON object {"permissive": ..., "<action>": [...]}`)
	}
	a := &ACLs{permissive: true, rules: map[Action][]rule{}}
	for _, name := range sortedNames(raw) {
		msg := raw[name]
		if name == "permissive" {
			if err := json.Unmarshal(msg, &a.permissive); err != nil {
				return nil, fmt.Errorf("permissive: want true or false: %w", err)
			}
			continue
		}
		object, ok := actionObjects[Action(name)]
		if !ok {
			if unenforced[name] {
				return nil, fmt.Errorf("action %q is not enforced by agora; remove it (enforced: %s)", name, knownActions())
			}
			return nil, fmt.Errorf("unknown action %q (known: permissive, %s)", name, knownActions())
		}
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(msg, &list); err != nil {
			return nil, fmt.Errorf("%s: want a list of {\"principals\": ..., %q: ...}: %w", name, object, err)
		}
		for i, fields := range list {
			r, err := parseRule(fields, object)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
			}
			a.rules[Action(name)] = append(a.rules[Action(name)], r)
		}
	}
	return a, nil
}

func parseRule(fields map[string]json.RawMessage, object string) (rule, error) {
	var r rule
	for k := range fields {
		if k != "principals" && k != object {
			return r, fmt.Errorf("unknown field %q (want \"principals\" and %q)", k, object)
		}
	}
	for _, f := range []struct {
		name string
		into *Entity
	}{{"principals", &r.principals}, {object, &r.object}} {
		msg, ok := fields[f.name]
		if !ok {
			return r, fmt.Errorf("missing %q", f.name)
		}
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(f.into); err != nil {
			return r, fmt.Errorf("%s: %w", f.name, err)
		}
		if err := f.into.validate(); err != nil {
			return r, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return r, nil
}

func sortedNames(m map[string]json.RawMessage) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func knownActions() string {
	names := make([]string, 0, len(actionObjects))
	for a := range actionObjects {
		names = append(names, string(a))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Allowed reports whether principal may do action on object, by Mesos's
// rules: the first rule of the action that matches both the principal and
// the object decides; when none does, permissive does. An empty principal
// (the request was not authenticated) or an empty object (the action
// names none) is "any": it matches only rules with ANY or NONE there, and
// is allowed only by ANY. A nil *ACLs allows everything.
func (a *ACLs) Allowed(action Action, principal, object string) bool {
	if a == nil {
		return true
	}
	for _, r := range a.rules[action] {
		if matches(principal, r.principals) && matches(object, r.object) {
			return allows(principal, r.principals) && allows(object, r.object)
		}
	}
	return a.permissive
}

// Permissive is the "permissive" of the ACLs: whether what no rule covers
// is allowed. A nil *ACLs is permissive.
func (a *ACLs) Permissive() bool {
	return a == nil || a.permissive
}

// HasRules reports whether the ACLs have any rule for action (when they
// have none, permissive alone decides it). A nil *ACLs has none.
func (a *ACLs) HasRules(action Action) bool {
	return a != nil && len(a.rules[action]) > 0
}

// AllowedAll is Allowed for every one of objects (a framework's roles): all
// must be allowed; the first refused is returned.
func (a *ACLs) AllowedAll(action Action, principal string, objects []string) (refused string, ok bool) {
	for _, o := range objects {
		if !a.Allowed(action, principal, o) {
			return o, false
		}
	}
	return "", true
}

func matches(value string, e Entity) bool {
	switch e.kind() {
	case anyKind, noneKind:
		return true
	}
	return value != "" && e.has(value)
}

func allows(value string, e Entity) bool {
	switch e.kind() {
	case anyKind:
		return true
	case noneKind:
		return false
	}
	return value != "" && e.has(value)
}

// Denied is the error for a refused action: it names the action, the
// principal and the object, as the 403's body.
func Denied(action Action, principal, object string) error {
	who := principal
	if who == "" {
		who = "(unauthenticated)"
	}
	if object == "" {
		return fmt.Errorf("not authorized: principal '%s' may not %s (--acls)", who, action)
	}
	return fmt.Errorf("not authorized: principal '%s' may not %s on %s '%s' (--acls)", who, action, actionObjects[action], object)
}
