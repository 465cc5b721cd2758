package bench

import (
	"context"
	"log/slog"
	"slices"
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
