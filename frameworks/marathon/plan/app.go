// Package plan is the pure core of the Marathon-compatible services
// framework: app definitions in Marathon's JSON, their validation with
// Marathon's error shape, placement constraints, and the decision whether
// an offer can hold one more instance of an app (and if not, why). It does
// no I/O and reads no clock.
package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// App is an app definition as Marathon's /v2/apps takes it. Fields that
// the framework does not act on yet are kept so that Validate can refuse
// them by name rather than ignore them.
type App struct {
	ID                    string               `json:"id"`
	Cmd                   *string              `json:"cmd,omitempty"`
	Args                  []string             `json:"args,omitempty"`
	User                  string               `json:"user,omitempty"`
	Instances             int                  `json:"instances"`
	CPUs                  float64              `json:"cpus"`
	Mem                   float64              `json:"mem"`
	Disk                  float64              `json:"disk"`
	GPUs                  int                  `json:"gpus"`
	Ports                 []int                `json:"ports,omitempty"`
	PortDefinitions       []PortDefinition     `json:"portDefinitions,omitempty"`
	RequirePorts          bool                 `json:"requirePorts"`
	Env                   map[string]any       `json:"env,omitempty"`
	Labels                map[string]string    `json:"labels,omitempty"`
	Constraints           [][]string           `json:"constraints,omitempty"`
	AcceptedResourceRoles []string             `json:"acceptedResourceRoles,omitempty"`
	BackoffSeconds        float64              `json:"backoffSeconds"`
	BackoffFactor         float64              `json:"backoffFactor"`
	MaxLaunchDelaySeconds float64              `json:"maxLaunchDelaySeconds"`
	KillSelection         string               `json:"killSelection"`
	UnreachableStrategy   *UnreachableStrategy `json:"unreachableStrategy,omitempty"`
	UpgradeStrategy       *UpgradeStrategy     `json:"upgradeStrategy,omitempty"`
	Fetch                 []Fetch              `json:"fetch,omitempty"`
	URIs                  []string             `json:"uris,omitempty"`
	TaskKillGracePeriod   *float64             `json:"taskKillGracePeriodSeconds,omitempty"`
	Version               string               `json:"version,omitempty"`
	VersionInfo           *VersionInfo         `json:"versionInfo,omitempty"`
	HealthChecks          []HealthCheck        `json:"healthChecks,omitempty"`
	ReadinessChecks       []ReadinessCheck     `json:"readinessChecks,omitempty"`
	Dependencies          []string             `json:"dependencies,omitempty"`
	Container             *Container           `json:"container,omitempty"`

	// Not done yet: accepted in the JSON only to be refused by name.
	Executor string          `json:"executor,omitempty"`
	Secrets  json.RawMessage `json:"secrets,omitempty"`
	Networks json.RawMessage `json:"networks,omitempty"`
}

// PortDefinition is one port an instance is given from its offer.
type PortDefinition struct {
	Port     int               `json:"port"`
	Protocol string            `json:"protocol,omitempty"`
	Name     string            `json:"name,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// UpgradeStrategy bounds a rolling replacement of an app's instances.
type UpgradeStrategy struct {
	MinimumHealthCapacity float64 `json:"minimumHealthCapacity"`
	MaximumOverCapacity   float64 `json:"maximumOverCapacity"`
}

// Fetch is one artifact the Mesos fetcher puts in the sandbox.
type Fetch struct {
	URI        string `json:"uri"`
	Executable bool   `json:"executable,omitempty"`
	Extract    bool   `json:"extract,omitempty"`
	Cache      bool   `json:"cache,omitempty"`
	DestPath   string `json:"destPath,omitempty"`
}

// VersionInfo says when an app last changed: its scale, and what its
// instances run (a config change replaces them; a scale change does not).
type VersionInfo struct {
	LastScalingAt      string `json:"lastScalingAt"`
	LastConfigChangeAt string `json:"lastConfigChangeAt"`
}

// SameConfig reports whether a and b differ in nothing but their
// instance count and versions: a change from one to the other is only
// a scale.
func SameConfig(a, b App) bool {
	strip := func(x App) string {
		x.Instances, x.Version, x.VersionInfo = 0, "", nil
		j, _ := json.Marshal(x)
		return string(j)
	}
	return strip(a) == strip(b)
}

// Kill selections.
const (
	YoungestFirst = "YOUNGEST_FIRST"
	OldestFirst   = "OLDEST_FIRST"
)

// Defaults is an app with Marathon's defaults, onto which a posted body
// is decoded.
func Defaults() App {
	return App{Instances: 1, CPUs: 1, Mem: 128, BackoffSeconds: 1, BackoffFactor: 1.15,
		MaxLaunchDelaySeconds: 300, KillSelection: YoungestFirst}
}

// Detail is one invalid field of an object: its JSON path and what is
// wrong with it.
type Detail struct {
	Path   string   `json:"path"`
	Errors []string `json:"errors"`
}

// Invalid is Marathon's 422 body: the object failed validation.
type Invalid struct {
	Message string   `json:"message"`
	Details []Detail `json:"details"`
}

func (e *Invalid) Error() string {
	parts := make([]string, 0, len(e.Details))
	for _, d := range e.Details {
		parts = append(parts, d.Path+": "+strings.Join(d.Errors, ", "))
	}
	return e.Message + ": " + strings.Join(parts, "; ")
}

// BadJSON is Marathon's 400 body: the request is not the JSON expected.
type BadJSON struct {
	Message string   `json:"message"`
	Details []Detail `json:"details"`
}

func (e *BadJSON) Error() string {
	if len(e.Details) > 0 {
		return fmt.Sprintf("%s at %s: %s", e.Message, e.Details[0].Path, strings.Join(e.Details[0].Errors, ", "))
	}
	return e.Message
}

// Decode decodes body onto base (Defaults for a new app, the current
// definition for an update), so that fields the body leaves out keep
// base's values. A body that is not JSON, or not of the expected types,
// is a *BadJSON.
func Decode(body []byte, base App) (App, error) {
	app := base.clone()
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&app); err != nil {
		path := "/"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			path = "/" + strings.ReplaceAll(te.Field, ".", "/")
		}
		return App{}, &BadJSON{Message: "Invalid JSON", Details: []Detail{{Path: path, Errors: []string{err.Error()}}}}
	}
	return app, nil
}

// clone copies the app's maps and slices, so that decoding onto the copy
// leaves the original alone.
func (a App) clone() App {
	a.Args = slices.Clone(a.Args)
	a.Ports = slices.Clone(a.Ports)
	a.PortDefinitions = slices.Clone(a.PortDefinitions)
	a.Env = maps.Clone(a.Env)
	a.Labels = maps.Clone(a.Labels)
	a.Constraints = slices.Clone(a.Constraints)
	a.AcceptedResourceRoles = slices.Clone(a.AcceptedResourceRoles)
	a.Fetch = slices.Clone(a.Fetch)
	a.URIs = slices.Clone(a.URIs)
	a.HealthChecks = slices.Clone(a.HealthChecks)
	a.ReadinessChecks = slices.Clone(a.ReadinessChecks)
	for i := range a.ReadinessChecks {
		a.ReadinessChecks[i].HTTPStatusCodesForReady = slices.Clone(a.ReadinessChecks[i].HTTPStatusCodesForReady)
	}
	a.Dependencies = slices.Clone(a.Dependencies)
	// Decoding writes through pointers and into raw messages' arrays:
	// they must not be shared with the original either.
	if a.Cmd != nil {
		c := *a.Cmd
		a.Cmd = &c
	}
	if a.TaskKillGracePeriod != nil {
		g := *a.TaskKillGracePeriod
		a.TaskKillGracePeriod = &g
	}
	a.Container = a.Container.clone()
	for _, r := range []*json.RawMessage{&a.Secrets, &a.Networks} {
		*r = slices.Clone(*r)
	}
	if a.UpgradeStrategy != nil {
		u := *a.UpgradeStrategy
		a.UpgradeStrategy = &u
	}
	if a.UnreachableStrategy != nil {
		u := *a.UnreachableStrategy
		a.UnreachableStrategy = &u
	}
	if a.VersionInfo != nil {
		v := *a.VersionInfo
		a.VersionInfo = &v
	}
	return a
}

// idSegment is one segment of an app's path: Marathon's rule.
var idSegment = regexp.MustCompile(`^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$`)

// CanonicalID makes id absolute ("basic-0" → "/basic-0") and cleans
// trailing slashes.
func CanonicalID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimRight(id, "/")
	if !strings.HasPrefix(id, "/") {
		id = "/" + id
	}
	return id
}

// Validate checks the app, which must have its canonical ID, and returns
// a *Invalid naming every field that is wrong, or nil.
func (a *App) Validate() error {
	var ds []Detail
	bad := func(path, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		for i := range ds {
			if ds[i].Path == path {
				ds[i].Errors = append(ds[i].Errors, msg)
				return
			}
		}
		ds = append(ds, Detail{Path: path, Errors: []string{msg}})
	}
	a.validateID(bad)
	switch {
	case a.Cmd != nil && len(a.Args) > 0:
		bad("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'; not both cmd and args")
	case (a.Cmd == nil || strings.TrimSpace(*a.Cmd) == "") && len(a.Args) == 0 && a.Image() == "":
		// An image's own command (its CMD) may be what the app runs.
		bad("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'")
	}
	if a.Container != nil {
		a.Container.validate(a, bad)
	}
	if a.Instances < 0 {
		bad("/instances", "must be greater than or equal to 0")
	}
	if a.CPUs < 0.001 {
		bad("/cpus", "got %g, expected 0.001 or more", a.CPUs)
	}
	if a.Mem < 0 {
		bad("/mem", "got %g, expected 0.0 or more", a.Mem)
	}
	if a.Disk < 0 {
		bad("/disk", "got %g, expected 0.0 or more", a.Disk)
	}
	if a.GPUs < 0 {
		bad("/gpus", "got %d, expected 0 or more", a.GPUs)
	}
	a.validatePorts(bad)
	for name, v := range a.Env {
		if _, ok := v.(string); !ok {
			bad("/env/"+name, "only string values are supported (secrets are not yet)")
		}
	}
	for i, c := range a.Constraints {
		if _, err := ParseConstraint(c); err != nil {
			bad(fmt.Sprintf("/constraints(%d)", i), "%s", err)
		}
	}
	for i, r := range a.AcceptedResourceRoles {
		if r == "" {
			bad(fmt.Sprintf("/acceptedResourceRoles(%d)", i), "must not be empty")
		}
	}
	if a.BackoffSeconds < 0 {
		bad("/backoffSeconds", "got %g, expected 0 or more", a.BackoffSeconds)
	}
	if a.BackoffFactor < 1 {
		bad("/backoffFactor", "got %g, expected 1.0 or more", a.BackoffFactor)
	}
	if a.MaxLaunchDelaySeconds < 0 {
		bad("/maxLaunchDelaySeconds", "got %g, expected 0 or more", a.MaxLaunchDelaySeconds)
	}
	if a.KillSelection != YoungestFirst && a.KillSelection != OldestFirst {
		bad("/killSelection", "got %q, expected one of [YOUNGEST_FIRST, OLDEST_FIRST]", a.KillSelection)
	}
	if u := a.UpgradeStrategy; u != nil {
		if u.MinimumHealthCapacity < 0 || u.MinimumHealthCapacity > 1 {
			bad("/upgradeStrategy/minimumHealthCapacity", "got %g, expected between 0 and 1", u.MinimumHealthCapacity)
		}
		if u.MaximumOverCapacity < 0 || u.MaximumOverCapacity > 1 {
			bad("/upgradeStrategy/maximumOverCapacity", "got %g, expected between 0 and 1", u.MaximumOverCapacity)
		}
	}
	if a.UnreachableStrategy != nil {
		a.UnreachableStrategy.validate(bad)
	}
	for i, f := range a.Fetch {
		if strings.TrimSpace(f.URI) == "" {
			bad(fmt.Sprintf("/fetch(%d)/uri", i), "must not be empty")
		}
	}
	if a.TaskKillGracePeriod != nil && *a.TaskKillGracePeriod < 0 {
		bad("/taskKillGracePeriodSeconds", "got %g, expected 0 or more", *a.TaskKillGracePeriod)
	}
	for i := range a.HealthChecks {
		a.HealthChecks[i].validate(i, a.PortCount(), bad)
	}
	if len(a.HealthChecks) > 1 {
		bad("/healthChecks", "got %d health checks, expected at most 1 (the agent runs one check per task)", len(a.HealthChecks))
	}
	for i := range a.ReadinessChecks {
		a.ReadinessChecks[i].validate(i, a, bad)
	}
	if len(a.ReadinessChecks) > 1 {
		bad("/readinessChecks", "got %d readiness checks, expected at most 1 (Marathon's limit)", len(a.ReadinessChecks))
	}
	a.validateDependencies(bad)
	a.refuseUnsupported(bad)
	if len(ds) == 0 {
		return nil
	}
	return &Invalid{Message: "Object is not valid", Details: ds}
}

func (a *App) validateID(bad func(path, format string, args ...any)) {
	if a.ID == "" || a.ID == "/" {
		bad("/id", "must not be empty")
		return
	}
	for _, seg := range strings.Split(strings.TrimPrefix(a.ID, "/"), "/") {
		if !idSegment.MatchString(seg) {
			bad("/id", "'%s' contains invalid characters (allowed: lowercase letters, digits, hyphens, \".\", \"..\")", a.ID)
			return
		}
	}
}

func (a *App) validatePorts(bad func(path, format string, args ...any)) {
	if len(a.Ports) > 0 && len(a.PortDefinitions) > 0 {
		bad("/", "You cannot specify both ports and port definitions")
	}
	names := map[string]bool{}
	for i, p := range a.PortDefinitions {
		path := fmt.Sprintf("/portDefinitions(%d)", i)
		if p.Port < 0 || p.Port > 65535 {
			bad(path+"/port", "got %d, expected between 0 and 65535", p.Port)
		}
		if p.Protocol != "" && p.Protocol != "tcp" && p.Protocol != "udp" && p.Protocol != "udp,tcp" && p.Protocol != "tcp,udp" {
			bad(path+"/protocol", "got %q, expected tcp, udp or udp,tcp", p.Protocol)
		}
		if p.Name != "" {
			if names[p.Name] {
				bad(path+"/name", "port names must be unique; %q is used twice", p.Name)
			}
			names[p.Name] = true
		}
	}
	for i, p := range a.Ports {
		if p < 0 || p > 65535 {
			bad(fmt.Sprintf("/ports(%d)", i), "got %d, expected between 0 and 65535", p)
		}
	}
	if a.RequirePorts {
		bad("/requirePorts", "not supported yet: host ports are taken from each offer's ranges (PORT0..N say which)")
	}
}

// refuseUnsupported names the fields the framework does not act on yet,
// rather than accepting an app it would run other than asked.
func (a *App) refuseUnsupported(bad func(path, format string, args ...any)) {
	if present(a.Secrets) {
		bad("/secrets", "secrets are not supported yet")
	}
	if present(a.Networks) {
		bad("/networks", "networks are not supported yet (instances use the host's network)")
	}
	if a.Executor != "" && a.Executor != "//cmd" {
		bad("/executor", "only the command executor is supported")
	}
	if a.GPUs > 0 {
		bad("/gpus", "GPUs are not supported yet")
	}
}

// present reports whether a raw JSON field holds more than null or an
// empty array or object.
func present(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	switch s {
	case "", "null", "[]", "{}":
		return false
	}
	return true
}

// PortCount is how many host ports an instance takes.
func (a *App) PortCount() int {
	if a.Container.bridged() {
		return len(a.Container.Docker.PortMappings)
	}
	if len(a.PortDefinitions) > 0 {
		return len(a.PortDefinitions)
	}
	return len(a.Ports)
}

// PortNames are the names of the app's ports, "" where unnamed.
func (a *App) PortNames() []string {
	out := make([]string, a.PortCount())
	for i, p := range a.PortDefs() {
		out[i] = p.Name
	}
	return out
}

// PortDefs describe the app's host ports: its portDefinitions, or in
// BRIDGE networking its port mappings (the container port as the port).
func (a *App) PortDefs() []PortDefinition {
	if !a.Container.bridged() {
		return a.PortDefinitions
	}
	out := make([]PortDefinition, 0, len(a.Container.Docker.PortMappings))
	for _, m := range a.Container.Docker.PortMappings {
		out = append(out, PortDefinition{Port: m.ContainerPort, Protocol: m.Protocol, Name: m.Name, Labels: m.Labels})
	}
	return out
}

// Normalize fills in what Marathon derives from a definition: the
// canonical ID, one dynamic port when no ports are given at all, and the
// deprecated ports as portDefinitions.
func (a *App) Normalize() {
	a.ID = CanonicalID(a.ID)
	a.normalizeDependencies()
	a.Container.normalize()
	if a.Container.bridged() {
		return // the port mappings are the ports
	}
	if a.Ports == nil && a.PortDefinitions == nil {
		a.PortDefinitions = []PortDefinition{{Port: 0, Protocol: "tcp"}}
	}
	if len(a.Ports) > 0 && len(a.PortDefinitions) == 0 {
		for _, p := range a.Ports {
			a.PortDefinitions = append(a.PortDefinitions, PortDefinition{Port: p, Protocol: "tcp"})
		}
		a.Ports = nil
	}
	for i := range a.PortDefinitions {
		if a.PortDefinitions[i].Protocol == "" {
			a.PortDefinitions[i].Protocol = "tcp"
		}
	}
}
