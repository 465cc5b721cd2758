// Package allocator is agora's hierarchical DRF allocator. It is a pure
// decision core: no I/O, no clocks (callers pass now), no goroutines. The
// master owns one Allocator and calls it from a single goroutine.
//
// Resources offered to a framework count as allocated to it until they are
// recovered (declined, unused remainder of an accept, or freed by a terminal
// task), exactly as in Mesos.
package allocator

import (
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Config holds the allocator's policy knobs.
type Config struct {
	// MinAllocatable lists alternatives: an agent's free resources are offered
	// only if they contain at least one of them. Empty means Mesos's default
	// {cpus:0.01} or {mem:32}.
	MinAllocatable []mesos.Resources
}

// FrameworkSpec describes a framework to the allocator.
type FrameworkSpec struct {
	ID              string
	Roles           []string
	SuppressedRoles []string
}

// AgentSpec describes an agent to the allocator.
type AgentSpec struct {
	ID       string
	Hostname string
	Total    mesos.Resources
}

// Offer is one allocation decision: resources of one agent for one
// framework in one role. Resources carry allocation_info.role = Role.
type Offer struct {
	FrameworkID string
	AgentID     string
	Role        string
	Resources   mesos.Resources
}

// Allocator is the hierarchical DRF allocator.
type Allocator struct{}

// New returns an empty allocator.
func New(cfg Config) *Allocator { panic("unimplemented") }

// AddFramework starts tracking a framework; used maps agent ID to resources
// the framework already holds there (each carrying allocation_info.role).
// An inactive framework gets no offers until ActivateFramework.
func (a *Allocator) AddFramework(f FrameworkSpec, used map[string]mesos.Resources, active bool) {
	panic("unimplemented")
}

// UpdateFramework changes a framework's roles and suppressed roles.
func (a *Allocator) UpdateFramework(f FrameworkSpec) { panic("unimplemented") }

// RemoveFramework forgets a framework and everything allocated to it.
func (a *Allocator) RemoveFramework(id string) { panic("unimplemented") }

// ActivateFramework lets a framework receive offers again.
func (a *Allocator) ActivateFramework(id string) { panic("unimplemented") }

// DeactivateFramework stops offers to a framework (it stays allocated).
func (a *Allocator) DeactivateFramework(id string) { panic("unimplemented") }

// AddAgent starts tracking an agent; used maps framework ID to resources it
// already holds there (each carrying allocation_info.role).
func (a *Allocator) AddAgent(s AgentSpec, used map[string]mesos.Resources) { panic("unimplemented") }

// RemoveAgent forgets an agent and all allocations on it.
func (a *Allocator) RemoveAgent(id string) { panic("unimplemented") }

// ActivateAgent / DeactivateAgent include or exclude an agent from offers.
func (a *Allocator) ActivateAgent(id string)   { panic("unimplemented") }
func (a *Allocator) DeactivateAgent(id string) { panic("unimplemented") }

// Recover returns resources allocated to a framework on an agent (each
// carrying allocation_info.role). If refuse > 0 the framework will not be
// offered that agent's resources again until now+refuse, unless more than
// the refused resources become available (Mesos's decline filter).
func (a *Allocator) Recover(frameworkID, agentID string, res mesos.Resources, refuse time.Duration, now time.Time) {
	panic("unimplemented")
}

// Suppress stops offers to a framework for roles (all its roles if empty).
func (a *Allocator) Suppress(frameworkID string, roles []string) { panic("unimplemented") }

// Revive unsuppresses roles (all if empty) and clears the framework's
// decline filters for them.
func (a *Allocator) Revive(frameworkID string, roles []string) { panic("unimplemented") }

// SetWeight sets a role's weight (default 1).
func (a *Allocator) SetWeight(role string, weight float64) { panic("unimplemented") }

// Allocate runs one allocation cycle at time now and returns the offers made.
func (a *Allocator) Allocate(now time.Time) []Offer { panic("unimplemented") }

// Totals summarises the cluster for metrics: total and allocated (offered or
// used) amounts of each scalar resource.
type Totals struct {
	Total     map[string]float64
	Allocated map[string]float64
}

// Totals returns the current totals.
func (a *Allocator) Totals() Totals { panic("unimplemented") }
