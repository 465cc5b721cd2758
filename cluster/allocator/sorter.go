package allocator

import (
	"math"
	"slices"
	"strings"
)

// The DRF sorter is a tree of roles. Inner nodes stand for roles that have
// sub-roles; leaves hold the frameworks subscribed to one role. A role with
// both frameworks and sub-roles has an inner node whose children are its
// sub-roles plus a "virtual" leaf for its own frameworks, as in Mesos.
//
// Every node keeps the allocation of its subtree, and every child list and
// framework list is kept sorted by (weighted dominant share, creation
// order). Shares are updated incrementally: a change marks the node dirty
// and settle moves it to its new place with a binary search and one copy,
// so a cycle never re-sorts everything unless the cluster total changed.

// client is one framework in one role: the unit DRF orders within a role.
type client struct {
	fw    *framework
	role  string
	leaf  *node
	idx   int32 // dense index used by filter bitmaps
	seq   uint64
	alloc scalars
	key   float64 // share the client is sorted by

	subscribed bool
	suppressed bool
	eligible   bool // in leaf.clients: subscribed, not suppressed, framework active
	dirty      bool
	removed    bool
	nAllocs    int // allocation entries on agents
	// filterAgents counts agents where the client has decline filters,
	// so that clearing them costs nothing when there are none.
	filterAgents int
}

func (c *client) rank() (float64, uint64) { return c.key, c.seq }

// node is a role (inner) or a role's framework list (leaf).
type node struct {
	role    string
	parent  *node
	leaf    bool
	virtual bool // a leaf under the inner node of its own role
	kids    []*node
	clients []int32 // leaf: eligible clients (slot indexes), sorted
	members int     // leaf: all clients, eligible or not
	live    int     // eligible clients in the subtree
	alloc   scalars
	weight  float64
	key     float64
	seq     uint64
	dirty   bool
	removed bool
	dirtyN  int  // leaf: dirty clients waiting for settle
	resort  bool // leaf: re-sort entirely at settle

	// Quota (see quota.go). Only the node standing for a role (its inner
	// node, or its leaf if it has no sub-roles) carries the role's flags.
	capped      bool // the role's limit leaves no room for unreserved offers
	openSum     int  // inner: Σ kids' open()
	hungrySelf  bool // the role is below its guarantee
	hungryBelow int  // hungry roles in the subtree, this one included
}

func (n *node) rank() (float64, uint64) { return n.key, n.seq }

// open counts eligible clients in the subtree that may be offered
// unreserved resources (no capped role on the way).
func (n *node) open() int {
	switch {
	case n.capped:
		return 0
	case n.leaf:
		return n.live
	}
	return n.openSum
}

type sorter struct {
	weights map[string]float64
	root    *node
	inner   map[string]*node
	leaves  map[string]*node

	total scalars        // cluster total of the main scalars
	inv   [nMain]float64 // 1/total, as used by every current key
	stale bool           // total changed: recompute all keys at settle

	slots     []*client // by idx
	freeSlots []int32
	eligible  []uint64 // bitmap of eligible client idx
	epoch     uint64   // bumped whenever a client becomes eligible
	seq       uint64

	dirtyClients []*client
	dirtyNodes   []*node
	resortLeaves []*node

	quotaState
}

func newSorter() sorter {
	return sorter{
		weights: map[string]float64{},
		root:    &node{weight: 1},
		inner:   map[string]*node{},
		leaves:  map[string]*node{},
	}
}

func (s *sorter) nextSeq() uint64 {
	s.seq++
	return s.seq
}

func (s *sorter) weightOf(role string) float64 {
	if w, ok := s.weights[role]; ok {
		return w
	}
	return 1
}

// share is the dominant share of x over the cluster total.
func (s *sorter) share(x *scalars) float64 {
	m := 0.0
	for i, inv := range s.inv {
		if f := float64(x[i]) * inv; f > m {
			m = f
		}
	}
	return m
}

func (s *sorter) nodeKey(n *node) float64 { return s.share(&n.alloc) / n.weight }

func (s *sorter) addTotal(t *scalars, sign int64) {
	for i := range s.total {
		s.total[i] += sign * t[i]
	}
	s.stale = true
}

// SetWeight sets a role's weight (default 1). Non-positive weights are
// ignored.
func (a *Allocator) SetWeight(role string, weight float64) {
	if !(weight > 0) || math.IsInf(weight, 0) {
		return
	}
	a.weights[role] = weight
	if n := a.inner[role]; n != nil {
		n.weight = weight
		a.markNode(n)
	}
	if l := a.leaves[role]; l != nil && !l.virtual {
		l.weight = weight
		a.markNode(l)
	}
}

func parentRole(role string) string {
	if i := strings.LastIndexByte(role, '/'); i >= 0 {
		return role[:i]
	}
	return ""
}

// innerFor returns the inner node of role path ("" is the root), creating
// it and its ancestors. A leaf of the same role moves under it.
func (s *sorter) innerFor(path string) *node {
	if path == "" {
		return s.root
	}
	if n := s.inner[path]; n != nil {
		return n
	}
	parent := s.innerFor(parentRole(path))
	n := &node{role: path, parent: parent, weight: s.weightOf(path), seq: s.nextSeq()}
	n.capped, n.hungrySelf = s.quotaFlags(path)
	n.hungryBelow = b2i(n.hungrySelf)
	oldOpen, oldHungry := 0, 0
	if l := s.leaves[path]; l != nil {
		oldOpen, oldHungry = l.open(), l.hungryBelow
		s.removeKid(parent, l)
		l.parent, l.virtual, l.weight = n, true, 1
		l.capped, l.hungrySelf, l.hungryBelow = false, false, 0
		n.alloc, n.live = l.alloc, l.live
		n.openSum = l.open()
		s.insertKid(n, l)
	}
	s.inner[path] = n
	s.insertKid(parent, n)
	s.propagateOpen(parent, n.open()-oldOpen)
	s.propagateHungry(parent, n.hungryBelow-oldHungry)
	return n
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// quotaFlags returns the capped and hungry flags of role.
func (s *sorter) quotaFlags(role string) (capped, hungry bool) {
	if q := s.quota[role]; q != nil {
		return q.capped, q.hungry
	}
	return false, false
}

// roleNode returns the node standing for role, or nil.
func (s *sorter) roleNode(role string) *node {
	if n := s.inner[role]; n != nil {
		return n
	}
	if l := s.leaves[role]; l != nil && !l.virtual {
		return l
	}
	return nil
}

// propagateOpen adds d to n's openSum and carries the change of open()
// upwards.
func (s *sorter) propagateOpen(n *node, d int) {
	for n != nil && d != 0 {
		before := n.open()
		n.openSum += d
		d = n.open() - before
		n = n.parent
	}
}

func (s *sorter) propagateHungry(n *node, d int) {
	for ; n != nil && d != 0; n = n.parent {
		n.hungryBelow += d
	}
}

// setCapped mirrors role's capped flag on its node.
func (s *sorter) setCapped(role string, capped bool) {
	n := s.roleNode(role)
	if n == nil || n.capped == capped {
		return
	}
	before := n.open()
	n.capped = capped
	s.propagateOpen(n.parent, n.open()-before)
}

// setHungry mirrors role's hungry flag on its node.
func (s *sorter) setHungry(role string, hungry bool) {
	n := s.roleNode(role)
	if n == nil || n.hungrySelf == hungry {
		return
	}
	n.hungrySelf = hungry
	d := -1
	if hungry {
		d = 1
	}
	s.propagateHungry(n, d)
}

// leafFor returns the leaf holding role's frameworks, creating it.
func (s *sorter) leafFor(role string) *node {
	if l := s.leaves[role]; l != nil {
		return l
	}
	parent := s.innerFor(parentRole(role))
	l := &node{role: role, leaf: true, parent: parent, weight: s.weightOf(role), seq: s.nextSeq()}
	if in := s.inner[role]; in != nil {
		l.parent, l.virtual, l.weight = in, true, 1
	} else {
		l.capped, l.hungrySelf = s.quotaFlags(role)
		l.hungryBelow = b2i(l.hungrySelf)
	}
	s.leaves[role] = l
	s.insertKid(l.parent, l)
	s.propagateHungry(l.parent, l.hungryBelow)
	return l
}

// dropLeaf removes an empty leaf and inner nodes left without children.
func (s *sorter) dropLeaf(l *node) {
	delete(s.leaves, l.role)
	l.removed = true
	n := l.parent
	s.removeKid(n, l)
	s.propagateHungry(n, -l.hungryBelow)
	for n != s.root && len(n.kids) == 0 {
		delete(s.inner, n.role)
		n.removed = true
		s.removeKid(n.parent, n)
		s.propagateHungry(n.parent, -n.hungryBelow)
		n = n.parent
	}
}

func (s *sorter) insertKid(parent, n *node) {
	n.key = s.nodeKey(n)
	parent.kids = insertRanked(parent.kids, n)
}

func (s *sorter) removeKid(parent, n *node) {
	i := indexRanked(parent.kids, n)
	parent.kids = slices.Delete(parent.kids, i, i+1)
}

// clientFor returns fw's client for role, creating an unsubscribed one.
func (a *Allocator) clientFor(fw *framework, role string) *client {
	if c := fw.client(role); c != nil {
		return c
	}
	c := &client{fw: fw, role: role, seq: a.nextSeq()}
	if n := len(a.freeSlots); n > 0 {
		c.idx = a.freeSlots[n-1]
		a.freeSlots = a.freeSlots[:n-1]
		a.slots[c.idx] = c
	} else {
		c.idx = int32(len(a.slots))
		a.slots = append(a.slots, c)
	}
	c.leaf = a.leafFor(role)
	c.leaf.members++
	fw.clients = append(fw.clients, c)
	return c
}

// dropClientIfIdle forgets a client that is neither subscribed nor holds
// anything.
func (a *Allocator) dropClientIfIdle(c *client) {
	if c.removed || c.subscribed || c.nAllocs > 0 {
		return
	}
	a.refresh(c)
	a.clearFilters(c)
	c.removed, c.dirty = true, false
	fw := c.fw
	fw.clients = slices.DeleteFunc(fw.clients, func(x *client) bool { return x == c })
	a.slots[c.idx] = nil
	a.freeSlots = append(a.freeSlots, c.idx)
	l := c.leaf
	l.members--
	if l.members == 0 {
		a.dropLeaf(l)
	}
}

// refresh brings c's eligibility up to date.
func (s *sorter) refresh(c *client) {
	want := c.subscribed && !c.suppressed && c.fw.active && !c.removed
	if want == c.eligible {
		return
	}
	c.eligible = want
	l := c.leaf
	d := -1
	if want {
		d = 1
		s.epoch++
		c.key = s.share(&c.alloc)
		i := s.searchClient(l.clients, c)
		l.clients = slices.Insert(l.clients, i, c.idx)
		setBit(&s.eligible, c.idx)
	} else {
		i := s.indexClient(l.clients, c)
		l.clients = slices.Delete(l.clients, i, i+1)
		clearBit(s.eligible, c.idx)
	}
	before := l.open()
	for n := l; n != nil; n = n.parent {
		n.live += d
	}
	s.propagateOpen(l.parent, l.open()-before)
}

// charge adds sign*d to c's allocation and every node above it.
func (s *sorter) charge(c *client, d *scalars, sign int64) {
	if *d == (scalars{}) {
		return
	}
	for i := range c.alloc {
		c.alloc[i] += sign * d[i]
	}
	if !c.dirty {
		c.dirty = true
		s.dirtyClients = append(s.dirtyClients, c)
		c.leaf.dirtyN++
	}
	for n := c.leaf; n != s.root; n = n.parent {
		for i := range n.alloc {
			n.alloc[i] += sign * d[i]
		}
		s.markNode(n)
	}
}

func (s *sorter) markNode(n *node) {
	if !n.dirty {
		n.dirty = true
		s.dirtyNodes = append(s.dirtyNodes, n)
	}
}

// settle moves every dirty client and node to its place.
func (s *sorter) settle() {
	if s.stale {
		s.resortAll()
		return
	}
	for _, c := range s.dirtyClients {
		l := c.leaf
		if !c.dirty || !c.eligible || l.resort {
			continue
		}
		if l.dirtyN > 8 && l.dirtyN*4 > len(l.clients) {
			l.resort = true
			s.resortLeaves = append(s.resortLeaves, l)
			continue
		}
		c.dirty = false
		i := s.indexClient(l.clients, c)
		c.key = s.share(&c.alloc)
		s.fixClient(l.clients, i)
	}
	for _, l := range s.resortLeaves {
		s.resortClients(l)
	}
	for _, c := range s.dirtyClients {
		c.dirty = false
		c.leaf.dirtyN = 0
	}
	s.dirtyClients = s.dirtyClients[:0]
	s.resortLeaves = s.resortLeaves[:0]
	for _, n := range s.dirtyNodes {
		if !n.dirty {
			continue
		}
		n.dirty = false
		if n.removed || n.parent == nil {
			continue
		}
		i := indexRanked(n.parent.kids, n)
		n.key = s.nodeKey(n)
		fixRanked(n.parent.kids, i)
	}
	s.dirtyNodes = s.dirtyNodes[:0]
}

func (s *sorter) resortClients(l *node) {
	for _, idx := range l.clients {
		c := s.slots[idx]
		c.key = s.share(&c.alloc)
	}
	slices.SortFunc(l.clients, func(x, y int32) int { return cmpRanked(s.slots[x], s.slots[y]) })
	l.resort = false
}

// resortAll recomputes every key after the cluster total changed.
func (s *sorter) resortAll() {
	for i, t := range s.total {
		s.inv[i] = 0
		if t > 0 {
			s.inv[i] = 1 / float64(t)
		}
	}
	var walk func(n *node)
	walk = func(n *node) {
		n.dirty = false
		if n.leaf {
			s.resortClients(n)
			n.dirtyN = 0
			return
		}
		for _, k := range n.kids {
			k.key = s.nodeKey(k)
			walk(k)
		}
		slices.SortFunc(n.kids, cmpRanked[*node])
	}
	walk(s.root)
	for _, c := range s.dirtyClients {
		c.dirty = false
	}
	s.dirtyClients, s.dirtyNodes, s.resortLeaves = s.dirtyClients[:0], s.dirtyNodes[:0], s.resortLeaves[:0]
	s.stale = false
}
