package bench

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// Offer handling the benchmark frameworks share: each holds offers, packs
// pending tasks into them one offer per ACCEPT, and once every task is
// launched gives the offers back and suppresses.

// heldOffers are the offers a framework holds and has not used yet, oldest
// first, and whether it has suppressed offers. Its owner's mutex guards it.
type heldOffers struct {
	held       []mesos.Offer
	suppressed bool
}

// hold adds new offers.
func (h *heldOffers) hold(os []mesos.Offer) { h.held = append(h.held, os...) }

// dropHeld forgets every offer: they died with the subscription.
func (h *heldOffers) dropHeld() { h.held = nil }

// rescindHeld forgets the offer the master took back.
func (h *heldOffers) rescindHeld(id mesos.OfferID) {
	h.held = slices.DeleteFunc(h.held, func(o mesos.Offer) bool { return o.ID == id })
}

// retireHeld empties the held offers, for retireOffers to decline, and
// notes that offers are suppressed; suppress says they were not yet.
func (h *heldOffers) retireHeld() (ids []mesos.OfferID, suppress bool) {
	ids = offerIDs(h.held)
	h.held = nil
	suppress = !h.suppressed
	h.suppressed = true
	return ids, suppress
}

// offerFiller is one benchmark framework's part in the offer handling
// they share: its event handlers (offers, rescind, disconnected) and its
// fill loop. mu is the framework's mutex; it guards held, pending and
// what room and packed touch.
type offerFiller struct {
	mu      *sync.Mutex
	held    *heldOffers
	pending *[]int // task numbers not launched yet
	need    offers.Need
	info    taskInfoFunc
	d       *scheduler.Driver
	log     *slog.Logger
	// room is how many more tasks may be launched now; mu is held.
	room func() int
	// packed records the tasks nums, infos, just packed into offer o
	// (none when it fit no task); mu is held.
	packed func(o *mesos.Offer, nums []int, infos []mesos.TaskInfo)
	// launch sends the ACCEPT of infos, tasks nums, into o; mu is not held.
	launch func(ctx context.Context, o *mesos.Offer, infos []mesos.TaskInfo, nums []int)
}

// offers holds new offers and launches what may be launched now.
func (f offerFiller) offers(ctx context.Context, os []mesos.Offer) {
	f.mu.Lock()
	f.held.hold(os)
	f.mu.Unlock()
	f.fill(ctx)
}

// rescind forgets the offer the master took back.
func (f offerFiller) rescind(_ context.Context, id mesos.OfferID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held.rescindHeld(id)
}

// disconnected drops the held offers: they died with the subscription.
func (f offerFiller) disconnected() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held.dropHeld()
}

// fill launches pending tasks into held offers, oldest offer first, while
// room allows. An offer is used whole: the tasks that fit (up to the room
// left) go in one ACCEPT and the rest of the offer is returned to the
// master, which offers it again. Offers that fit no task are declined for
// a second. Once every task is launched, the held offers are declined and
// offers suppressed; should tasks be pending again after that, offers
// are revived.
func (f offerFiller) fill(ctx context.Context) {
	for {
		f.mu.Lock()
		if len(*f.pending) == 0 {
			held, suppress := f.held.retireHeld()
			f.mu.Unlock()
			retireOffers(ctx, f.d, f.log, held, suppress)
			return
		}
		if f.held.suppressed {
			f.held.suppressed = false
			f.mu.Unlock()
			if err := f.d.Revive(ctx); err != nil {
				f.log.Warn("revive offers", "err", err)
			}
			continue
		}
		room := f.room()
		if room <= 0 || len(f.held.held) == 0 {
			f.mu.Unlock()
			return
		}
		o := f.held.held[0]
		f.held.held = f.held.held[1:]
		var nums []int
		var infos []mesos.TaskInfo
		nums, infos, *f.pending = packOffer(&o, f.need, room, *f.pending, f.info)
		f.packed(&o, nums, infos)
		f.mu.Unlock()
		if len(infos) == 0 {
			declineOffers(ctx, f.d, f.log, []mesos.OfferID{o.ID}, time.Second)
			continue
		}
		f.launch(ctx, &o, infos, nums)
	}
}

// taskInfoFunc builds task n's TaskInfo on agent with resources rs.
type taskInfoFunc func(n int, agent mesos.AgentID, rs []mesos.Resource) mesos.TaskInfo

// packOffer takes pending tasks, in order, into offer o while what is left
// of it fits need, at most room of them. It returns the numbers of the
// tasks taken, their TaskInfos, and what is left pending.
func packOffer(o *mesos.Offer, need offers.Need, room int, pending []int, info taskInfoFunc) (nums []int, infos []mesos.TaskInfo, rest []int) {
	pool := offers.NewPool(o)
	for len(infos) < room && len(pending) > 0 {
		rs, ok := pool.Take(need)
		if !ok {
			break
		}
		n := pending[0]
		pending = pending[1:]
		nums = append(nums, n)
		infos = append(infos, info(n, o.AgentID, rs))
	}
	return nums, infos, pending
}

// offerIDs lists the IDs of os.
func offerIDs(os []mesos.Offer) []mesos.OfferID {
	ids := make([]mesos.OfferID, 0, len(os))
	for _, o := range os {
		ids = append(ids, o.ID)
	}
	return ids
}

// declineOffers declines ids for refuse. A failure is only logged: the
// master offers them again.
func declineOffers(ctx context.Context, d *scheduler.Driver, log *slog.Logger, ids []mesos.OfferID, refuse time.Duration) {
	if len(ids) == 0 {
		return
	}
	if err := d.Decline(ctx, ids, refuse); err != nil {
		log.Warn("decline offers", "err", err)
	}
}

// retireOffers is what a framework does once every task is launched: it
// suppresses offers (unless it already had) and declines the held ones,
// ids, for an hour (see heldOffers.retireHeld).
func retireOffers(ctx context.Context, d *scheduler.Driver, log *slog.Logger, ids []mesos.OfferID, suppress bool) {
	if suppress {
		if err := d.Suppress(ctx); err != nil {
			log.Warn("suppress offers", "err", err)
		}
	}
	declineOffers(ctx, d, log, ids, time.Hour)
}
