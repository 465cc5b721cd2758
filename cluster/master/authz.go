package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/registry"
)

// Authorization (--acls, Config.ACLs): each call that changes something is
// checked against the action Mesos names for it before it does anything,
// and refused with a 403 naming the action, the principal and the object;
// the views (/master/state, GET_STATE...) show a principal only the
// frameworks, tasks, executors and agents it may view. The subject is the
// authenticated principal; without authentication a framework's calls are
// judged as the principal its FrameworkInfo names (as Mesos did before
// HTTP authentication) and an operator's as nobody ("any").

// denied is the 403 for a refused action.
func denied(action auth.Action, principal, object string) *httpError {
	return errorf(http.StatusForbidden, "%v", auth.Denied(action, principal, object))
}

// check is one authorization: nil when allowed.
func (m *Master) check(action auth.Action, principal, object string) error {
	if m.cfg.ACLs.Allowed(action, principal, object) {
		return nil
	}
	return denied(action, principal, object)
}

// checkAll checks action on every object.
func (m *Master) checkAll(action auth.Action, principal string, objects []string) error {
	if refused, ok := m.cfg.ACLs.AllowedAll(action, principal, objects); !ok {
		return denied(action, principal, refused)
	}
	return nil
}

// requestPrincipal is the authenticated principal of r ("" if none).
func requestPrincipal(r *http.Request) string {
	p, _ := auth.Principal(r.Context())
	return p
}

// frameworkPrincipal is the subject of a framework's calls.
func frameworkPrincipal(r *http.Request, fi *mesos.FrameworkInfo) string {
	if p := requestPrincipal(r); p != "" {
		return p
	}
	return fi.GetPrincipal()
}

// frameworkRoles are the roles a FrameworkInfo asks for.
func frameworkRoles(fi *mesos.FrameworkInfo) []string {
	if hasCapability(fi, mesos.FrameworkInfo_Capability_MULTI_ROLE) {
		return fi.Roles
	}
	return []string{fi.GetRole()}
}

// authorizeSubscribe is register_frameworks for a SUBSCRIBE (and the new
// roles of an UPDATE_FRAMEWORK): every role the framework asks for.
func (m *Master) authorizeSubscribe(r *http.Request, c *scheduler.Call) error {
	var fi *mesos.FrameworkInfo
	switch c.GetType() {
	case scheduler.Call_SUBSCRIBE:
		fi = c.GetSubscribe().FrameworkInfo
	case scheduler.Call_UPDATE_FRAMEWORK:
		if u := c.GetUpdateFramework(); u != nil {
			fi = &u.FrameworkInfo
		}
	}
	if fi == nil {
		return nil
	}
	return m.checkAll(auth.RegisterFrameworks, frameworkPrincipal(r, fi), frameworkRoles(fi))
}

// authorizeAccept checks every operation of an ACCEPT before any runs:
// run_tasks for each task's user, and the resource operations. One
// refused operation refuses the call; the offers stay outstanding.
func (m *Master) authorizeAccept(principal string, f *framework, acc *scheduler.Call_Accept) error {
	if acc == nil {
		return nil
	}
	for _, op := range acc.Operations {
		if err := m.authorizeOperation(principal, op); err != nil {
			return err
		}
		for _, t := range operationTasks(op) {
			if err := m.check(auth.RunTasks, principal, taskUser(f, &t)); err != nil {
				return err
			}
		}
		if g := op.GetLaunchGroup(); g != nil {
			if u := g.Executor.GetCommand().GetUser(); u != "" {
				if err := m.check(auth.RunTasks, principal, u); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// taskUser is the user a task runs as: its command's, its executor's, or
// the framework's.
func taskUser(f *framework, t *mesos.TaskInfo) string {
	if u := t.GetCommand().GetUser(); u != "" {
		return u
	}
	if u := t.GetExecutor().GetCommand().GetUser(); u != "" {
		return u
	}
	return f.info.User
}

// authorizeOperation checks a resource operation (from a framework's
// ACCEPT or an operator): reserve_resources and create_volumes on the
// role, unreserve_resources on the principal that reserved,
// destroy_volumes on the principal that created the volume.
func (m *Master) authorizeOperation(principal string, op mesos.Offer_Operation) error {
	var (
		action auth.Action
		rs     []mesos.Resource
		object func(mesos.Resource) string
	)
	switch op.GetType() {
	case mesos.Offer_Operation_RESERVE:
		action, rs, object = auth.ReserveResources, op.GetReserve().GetResources(), reservationRole
	case mesos.Offer_Operation_UNRESERVE:
		action, rs, object = auth.UnreserveResources, op.GetUnreserve().GetResources(), reserverPrincipal
	case mesos.Offer_Operation_CREATE:
		action, rs, object = auth.CreateVolumes, op.GetCreate().GetVolumes(), reservationRole
	case mesos.Offer_Operation_DESTROY:
		action, rs, object = auth.DestroyVolumes, op.GetDestroy().GetVolumes(), volumeCreator
	default:
		return nil
	}
	for _, r := range rs {
		if err := m.check(action, principal, object(r)); err != nil {
			return err
		}
	}
	return nil
}

// reservationRole is the role a resource is (to be) reserved for, in the
// refined format or the old one.
func reservationRole(r mesos.Resource) string {
	if n := len(r.Reservations); n > 0 {
		return r.Reservations[n-1].GetRole()
	}
	return r.GetRole()
}

// reserverPrincipal is the principal of a resource's latest reservation.
func reserverPrincipal(r mesos.Resource) string {
	if n := len(r.Reservations); n > 0 {
		return r.Reservations[n-1].GetPrincipal()
	}
	return r.GetReservation().GetPrincipal()
}

// volumeCreator is the principal that created a persistent volume.
func volumeCreator(r mesos.Resource) string {
	return r.GetDisk().GetPersistence().GetPrincipal()
}

// authorizeAgentRegistration is register_agents for an agent's REGISTER:
// the subject is the principal the agent authenticated as
// (--authenticate_agents), or nobody. The ACLs never change, so it runs
// off the loop, before the registration touches anything.
// A refusal is logged once per agent (by its ID, or its hostname on a
// first registration): after an upgrade, an ACL file without a
// register_agents rule refuses every agent, and the operator must see why.
func (m *Master) authorizeAgentRegistration(r *http.Request, info *mesos.AgentInfo) error {
	principal := requestPrincipal(r)
	err := m.check(auth.RegisterAgents, principal, "")
	if err != nil {
		key := info.GetID().GetValue()
		if key == "" {
			key = "host " + info.GetHostname()
		}
		if m.firstRefusal(key) {
			m.log.Warn("agent registration refused by --acls (register_agents); it retries and is refused each time",
				"agent", info.GetID().GetValue(), "hostname", info.GetHostname(), "principal", principal, "from", r.RemoteAddr, "error", err)
		}
	}
	return err
}

// maxRefusedAgentsLogged bounds the agents whose refusal is remembered;
// beyond it, refusals of new agents are not logged.
const maxRefusedAgentsLogged = 1024

// firstRefusal reports whether the agent key names has not been refused
// before (and remembers it), false once the bound is reached.
func (m *Master) firstRefusal(key string) bool {
	m.refusedMu.Lock()
	defer m.refusedMu.Unlock()
	if m.refusedAgents == nil {
		m.refusedAgents = map[string]bool{}
	}
	if m.refusedAgents[key] || len(m.refusedAgents) >= maxRefusedAgentsLogged {
		return false
	}
	m.refusedAgents[key] = true
	return true
}

// warnACLs warns at start-up of ACLs that refuse every agent: with
// "permissive": false and no register_agents rule (an ACL file written
// before register_agents was enforced), no agent can register or
// re-register.
func (m *Master) warnACLs() {
	acls := m.cfg.ACLs
	if acls == nil || acls.Permissive() || acls.HasRules(auth.RegisterAgents) {
		return
	}
	m.log.Warn(`--acls has "permissive": false and no register_agents rule: agents will be refused (403) when they register or re-register; ` +
		`add "register_agents": [{"principals": {"type": "ANY"}, "agents": {"type": "ANY"}}] (or name the agents' principals) to let them in`)
}

// checkAgentPrincipal: with --authenticate_agents, an agent's calls
// after REGISTER (status updates, pongs...) and its re-registrations
// come only from the principal it registered as, so that one agent's
// credentials cannot act for another agent. A mismatch is a 403 naming
// both; the call changes nothing. An agent the master knows only from
// its registry (after a failover) has no principal yet and takes the one
// it re-registers as. It runs on the loop.
func checkAgentPrincipal(a *agent, principal, call string) error {
	if principal == "" || a.principal == "" || a.principal == principal {
		return nil
	}
	return errorf(http.StatusForbidden, "authenticated principal '%s' does not match principal '%s' that agent %s registered as: %s refused",
		principal, a.principal, a.id, call)
}

// readmitPrincipal is the principal an agent the registry has (rec) is
// re-admitted for when principal asks to bring it back, as info, from
// from, after a master failover or restart: the one recorded for it.
// Another principal is refused with 403 naming the agent and both
// principals. A record without one (written before principals were
// recorded, or while agents did not authenticate) takes the caller's
// only if the caller is the agent the record describes (agentMismatch):
// else any valid agent credential could claim the ID, record itself, and
// lock the real agent out for good. A caller without a principal (agents
// do not authenticate now) keeps the record's.
//
// It answers errLookupHostname when the agent's recorded hostname must be
// looked up to tell (peer.hostAddrs): the caller looks it up off the loop
// and asks again.
func readmitPrincipal(rec registry.AgentRecord, info *mesos.AgentInfo, principal string, from peer) (string, error) {
	switch {
	case rec.Principal == "" && principal != "":
		if err := agentMismatch(rec, info, principal, from); err != nil {
			return "", err
		}
		return principal, nil
	case principal == "" || principal == rec.Principal:
		return rec.Principal, nil
	}
	return "", errorf(http.StatusForbidden, "authenticated principal '%s' does not match principal '%s' that agent %s was admitted as: re-registration refused",
		principal, rec.Principal, rec.ID)
}

// errLookupHostname: readmitPrincipal needs the addresses of the agent's
// hostname (peer.hostAddrs).
var errLookupHostname = errors.New("the agent's hostname must be looked up")

// peer is where a REGISTER came from: the connection's address and, once
// looked up (only for a record that needs it), the addresses the
// agent's hostname resolves to.
type peer struct {
	remote    string // r.RemoteAddr
	resolved  bool
	hostAddrs []string
	lookupErr error
}

// agentMismatch checks that principal, re-registering the agent of a
// record without a principal as got, from from, is the agent the record
// describes; nil if it is. What identifies the agent is its hostname and
// port, and the address it connects from: the IP in the record's pid
// (absent from records older than pids), its recorded hostname if that is
// an IP, or one of the addresses the master resolves its recorded
// hostname to. The record stays as it is whatever the answer:
//
//   - 409 when the hostname or port differs (or the record has no agent
//     info): the caller is another agent, or this one moved to another
//     machine. The master cannot tell the mover from an impostor, so
//     neither gets the ID: the real agent, if it moved, registers again
//     without one (its tasks end), and the record awaits its agent until
//     --agent_reregister_timeout.
//   - 403 when hostname and port match but the address is none of those:
//     this is what an agent that did not move looks like when its source
//     address changed (dual stack, several interfaces, a NAT pool), and it
//     happens exactly at a failover, so the agent keeps its ID and tasks
//     and retries, while an impostor copying hostname and port gets no ID.
//     An operator lets it in (its hostname resolving, on the master, to
//     the address it connects from) or takes it down (--recover=cleanup).
//   - 503, with Retry-After, when the hostname had to be looked up and the
//     lookup failed for now (a timeout, SERVFAIL): that is no proof of
//     another agent, and the agent keeps its ID and retries. A hostname
//     the resolver says does not exist (NXDOMAIN) is a definite answer,
//     which retrying does not change: a 403 naming the hostname, as for
//     an address that is none of the agent's.
func agentMismatch(rec registry.AgentRecord, got *mesos.AgentInfo, principal string, from peer) error {
	want := rec.Info
	moved := func(why string) error {
		return errorf(http.StatusConflict, "agent %s is recorded without a principal, and principal '%s' is not the agent it describes: %s; "+
			"re-registration refused, the record stays as it is (an agent that moved registers again without an ID)",
			rec.ID, principal, why)
	}
	switch {
	case want == nil:
		return moved("the record has no agent info to check it against")
	case got.GetHostname() != want.GetHostname():
		return moved(fmt.Sprintf("hostname %q is not the recorded %q", got.GetHostname(), want.GetHostname()))
	case got.GetPort() != want.GetPort():
		return moved(fmt.Sprintf("port %d is not the recorded %d", got.GetPort(), want.GetPort()))
	}
	host := want.GetHostname()
	ip := hostOf(from.remote)
	pidIP := pidHost(rec.PID)
	if sameIP(ip, pidIP) || sameIP(ip, host) {
		return nil
	}
	var not []string
	if rec.PID != "" {
		not = append(not, fmt.Sprintf("the IP of its recorded pid %s", rec.PID))
	}
	if net.ParseIP(host) != nil {
		not = append(not, "its recorded hostname")
	} else {
		var dnsErr *net.DNSError
		switch {
		case !from.resolved:
			return errLookupHostname
		case errors.As(from.lookupErr, &dnsErr) && dnsErr.IsNotFound:
			not = append(not, fmt.Sprintf("an address of its recorded hostname %q, which does not resolve for the master (%v)", host, from.lookupErr))
		case from.lookupErr != nil:
			e := errorf(http.StatusServiceUnavailable, "agent %s is recorded without a principal, and its recorded hostname %q could not be looked up to check the address principal '%s' connects from (%s): %v; "+
				"re-registration deferred, the record stays as it is: retry", rec.ID, host, principal, ip, from.lookupErr)
			e.retryAfter = hostLookupTTL
			return e
		default:
			for _, a := range from.hostAddrs {
				if sameIP(ip, a) {
					return nil
				}
			}
			not = append(not, fmt.Sprintf("an address of its recorded hostname %q (%s)", host, strings.Join(from.hostAddrs, ", ")))
		}
	}
	letIn := "the agent connecting from its recorded address"
	if net.ParseIP(host) == nil {
		letIn = fmt.Sprintf("%q resolving to %s for the master, or %s", host, ip, letIn)
	}
	return errorf(http.StatusForbidden, "agent %s is recorded without a principal; principal '%s' re-registers it with its recorded hostname %q and port %d but connects from %s, which is not %s: "+
		"re-registration refused, the record stays as it is and the agent keeps its ID and retries; an operator lets it in (%s) or takes it down (restarted once with --recover=cleanup, it registers as a new agent)",
		rec.ID, principal, host, want.GetPort(), ip, strings.Join(not, ", nor "), letIn)
}

// Lookups of agents' hostnames (agentMismatch). After a failover
// thousands of agents re-register at once: the re-registrations naming
// one hostname share one lookup, and its answer (addresses or error) is
// kept for hostLookupTTL; at most maxConcurrentHostLookups run at once,
// a lookup waits at most hostLookupTimeout for its turn and then has
// hostLookupTimeout of its own, and at most maxHostLookups hostnames are
// kept (beyond, a lookup is not shared).
const (
	hostLookupTTL            = 5 * time.Second
	hostLookupTimeout        = 10 * time.Second
	maxConcurrentHostLookups = 32
	maxHostLookups           = 8192
)

// hostLookups shares lookups of hostnames among concurrent callers.
type hostLookups struct {
	resolve func(context.Context, string) ([]string, error)
	now     func() time.Time
	max     int // hostnames kept at most
	slots   chan struct{}

	// queued, if set, is called when a lookup of hostname waits for
	// its turn (all slots taken); for tests.
	queued func(hostname string)

	mu      sync.Mutex
	entries map[string]*hostLookup
}

// hostLookup is one lookup: done is closed once addrs and err are set,
// and it is kept until expires.
type hostLookup struct {
	done    chan struct{}
	addrs   []string
	err     error
	expires time.Time
}

func newHostLookups(resolve func(context.Context, string) ([]string, error)) *hostLookups {
	if resolve == nil {
		resolve = net.DefaultResolver.LookupHost
	}
	return &hostLookups{resolve: resolve, now: time.Now, max: maxHostLookups,
		slots: make(chan struct{}, maxConcurrentHostLookups), entries: map[string]*hostLookup{}}
}

// lookup is the addresses of hostname, from a lookup in flight or kept,
// or a new one; it returns early, with ctx's error, when ctx ends.
func (h *hostLookups) lookup(ctx context.Context, hostname string) ([]string, error) {
	e := h.entry(hostname)
	select {
	case <-e.done:
		return e.addrs, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// entry is the lookup of hostname in flight or kept, else a new one,
// started.
func (h *hostLookups) entry(hostname string) *hostLookup {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if e, ok := h.entries[hostname]; ok {
		select {
		case <-e.done:
			if now.Before(e.expires) {
				return e
			}
			delete(h.entries, hostname)
		default:
			return e
		}
	}
	if len(h.entries) >= h.max {
		h.sweep(now)
	}
	e := &hostLookup{done: make(chan struct{})}
	if len(h.entries) < h.max {
		h.entries[hostname] = e
	}
	go h.run(e, hostname)
	return e
}

// sweep drops the kept answers that have expired; h.mu is held.
func (h *hostLookups) sweep(now time.Time) {
	for name, e := range h.entries {
		select {
		case <-e.done:
			if !now.Before(e.expires) {
				delete(h.entries, name)
			}
		default:
		}
	}
}

// run looks hostname up, on its own clock: the callers that share it may
// go away. Waiting for a slot and the lookup have a budget each.
func (h *hostLookups) run(e *hostLookup, hostname string) {
	var addrs []string
	var err error
	if err = h.acquire(hostname); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), hostLookupTimeout)
		addrs, err = h.resolve(ctx, hostname)
		cancel()
		<-h.slots
	}
	h.mu.Lock()
	e.addrs, e.err, e.expires = addrs, err, h.now().Add(hostLookupTTL)
	close(e.done)
	h.mu.Unlock()
}

// acquire takes a slot for a lookup of hostname, waiting at most
// hostLookupTimeout for one.
func (h *hostLookups) acquire(hostname string) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.queued != nil {
		h.queued(hostname)
	}
	wait := time.NewTimer(hostLookupTimeout)
	defer wait.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-wait.C:
		return fmt.Errorf("not started within %s: %d lookups of agents' hostnames in flight", hostLookupTimeout, cap(h.slots))
	}
}

// lookupAgentHost resolves an agent's hostname for agentMismatch, off the
// loop, sharing the lookup with other re-registrations of that hostname.
func (m *Master) lookupAgentHost(ctx context.Context, from peer, hostname string) peer {
	from.resolved = true
	from.hostAddrs, from.lookupErr = m.hostLookups.lookup(ctx, hostname)
	return from
}

// sameIP reports whether a and b are the same IP address (as written in
// any form), false if either is not one.
func sameIP(a, b string) bool {
	x, y := net.ParseIP(a), net.ParseIP(b)
	return x != nil && y != nil && x.Equal(y)
}

// authorizeOperator checks an operator API call that changes something,
// on the loop (TEARDOWN reads the framework's principal).
func (m *Master) authorizeOperator(r *http.Request, c *master.Call) error {
	p := requestPrincipal(r)
	switch c.Type {
	case master.Call_TEARDOWN:
		if f := m.frameworks[teardownID(c)]; f != nil {
			return m.check(auth.TeardownFrameworks, p, f.info.GetPrincipal())
		}
	case master.Call_RESERVE_RESOURCES:
		return m.authorizeOperation(p, resourceOperation(mesos.Offer_Operation_RESERVE, c.GetReserveResources().GetResources()))
	case master.Call_UNRESERVE_RESOURCES:
		return m.authorizeOperation(p, resourceOperation(mesos.Offer_Operation_UNRESERVE, c.GetUnreserveResources().GetResources()))
	case master.Call_CREATE_VOLUMES:
		return m.authorizeOperation(p, resourceOperation(mesos.Offer_Operation_CREATE, c.GetCreateVolumes().GetVolumes()))
	case master.Call_DESTROY_VOLUMES:
		return m.authorizeOperation(p, resourceOperation(mesos.Offer_Operation_DESTROY, c.GetDestroyVolumes().GetVolumes()))
	case master.Call_UPDATE_WEIGHTS:
		var roles []string
		for _, w := range c.GetUpdateWeights().GetWeightInfos() {
			roles = append(roles, w.GetRole())
		}
		return m.checkAll(auth.UpdateWeights, p, roles)
	case master.Call_UPDATE_QUOTA:
		var roles []string
		for _, q := range c.GetUpdateQuota().GetQuotaConfigs() {
			roles = append(roles, q.Role)
		}
		return m.checkAll(auth.UpdateQuotas, p, roles)
	case master.Call_SET_QUOTA:
		return m.check(auth.UpdateQuotas, p, setQuotaRole(c))
	case master.Call_REMOVE_QUOTA:
		return m.check(auth.UpdateQuotas, p, c.GetRemoveQuota().GetRole())
	case master.Call_DRAIN_AGENT:
		if c.GetDrainAgent().GetMarkGone() {
			if err := m.check(auth.MarkAgentsGone, p, ""); err != nil {
				return err
			}
		}
		return m.check(auth.DrainAgents, p, "")
	case master.Call_MARK_AGENT_GONE:
		return m.check(auth.MarkAgentsGone, p, "")
	case master.Call_DEACTIVATE_AGENT:
		return m.check(auth.DeactivateAgents, p, "")
	case master.Call_REACTIVATE_AGENT:
		return m.check(auth.ReactivateAgents, p, "")
	case master.Call_UPDATE_MAINTENANCE_SCHEDULE, master.Call_START_MAINTENANCE, master.Call_STOP_MAINTENANCE:
		return m.checkUncovered(c.Type.String(), p)
	}
	return nil
}

// checkUncovered is the check of a call that changes something but that
// no enforced ACL action covers yet (the maintenance calls): allowed when
// --acls is permissive (or absent), refused otherwise, since nothing in
// the ACLs could have granted it.
func (m *Master) checkUncovered(call, principal string) error {
	if m.cfg.ACLs.Permissive() {
		return nil
	}
	who := principal
	if who == "" {
		who = "(unauthenticated)"
	}
	return errorf(http.StatusForbidden, "not authorized: principal '%s' may not %s: no ACL action covers it yet, and --acls is not permissive", who, call)
}

// authorizeHTTPUncovered is checkUncovered for one of the older endpoints
// (/maintenance/schedule, /machine/down, /machine/up): false when it has
// answered 403.
func (m *Master) authorizeHTTPUncovered(w http.ResponseWriter, r *http.Request) bool {
	if err := m.checkUncovered(r.Method+" "+r.URL.Path, requestPrincipal(r)); err != nil {
		writeError(w, err)
		return false
	}
	return true
}

// authorizeHTTP is the check of one of Mesos's older endpoints (/weights,
// /quota, /reserve...): false when it has answered 403 and the request
// goes no further.
func (m *Master) authorizeHTTP(w http.ResponseWriter, r *http.Request, action auth.Action, objects ...string) bool {
	if len(objects) == 0 {
		objects = []string{""}
	}
	if err := m.checkAll(action, requestPrincipal(r), objects); err != nil {
		writeError(w, err)
		return false
	}
	return true
}

// authorizeHTTPOperation is authorizeHTTP for /reserve, /unreserve,
// /create-volumes and /destroy-volumes.
func (m *Master) authorizeHTTPOperation(w http.ResponseWriter, r *http.Request, op mesos.Offer_Operation) bool {
	if err := m.authorizeOperation(requestPrincipal(r), op); err != nil {
		writeError(w, err)
		return false
	}
	return true
}

func teardownID(c *master.Call) string {
	if t := c.GetTeardown(); t != nil {
		return t.FrameworkID.Value
	}
	return ""
}

func setQuotaRole(c *master.Call) string {
	if s := c.GetSetQuota(); s != nil {
		return s.QuotaRequest.GetRole()
	}
	return ""
}

func weightRoles(ws []mesos.WeightInfo) []string {
	roles := make([]string, 0, len(ws))
	for _, w := range ws {
		roles = append(roles, w.GetRole())
	}
	return roles
}
