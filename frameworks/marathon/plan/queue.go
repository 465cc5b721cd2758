package plan

import "time"

// OfferStats are the placement diagnostics of one app's launch queue
// entry: every offer processed for it since it began waiting, and the
// unused ones among the last few. /v2/queue reports them in Marathon 1.4's
// processedOffersSummary shape.
type OfferStats struct {
	Processed  int
	Unused     int
	LastUsed   time.Time
	LastUnused time.Time
	since      map[Reason]int // declines by first reason since the entry began
	last       []UnusedOffer  // the most recent unused offers, oldest first
}

// UnusedOffer is one offer that was not used, and why.
type UnusedOffer struct {
	OfferID   string    `json:"offerId"`
	AgentID   string    `json:"agentId"`
	Hostname  string    `json:"hostname"`
	Reasons   []Reason  `json:"reason"`
	Details   []string  `json:"details"`
	Timestamp time.Time `json:"timestamp"`
}

// keepLast is how many unused offers an entry remembers.
const keepLast = 20

// Used notes an offer that launched an instance.
func (s *OfferStats) Used(now time.Time) {
	s.Processed++
	s.LastUsed = now
}

// Declined notes an offer that could not be used, and why.
func (s *OfferStats) Declined(u UnusedOffer) {
	s.Processed++
	s.Unused++
	s.LastUnused = u.Timestamp
	if s.since == nil {
		s.since = map[Reason]int{}
	}
	if len(u.Reasons) > 0 {
		s.since[u.Reasons[0]]++
	}
	s.last = append(s.last, u)
	if len(s.last) > keepLast {
		s.last = s.last[len(s.last)-keepLast:]
	}
}

// LastUnused lists the most recent unused offers, oldest first.
func (s *OfferStats) LastUnusedOffers() []UnusedOffer { return append([]UnusedOffer(nil), s.last...) }

// RejectSummary is the count of offers that reached a check (processed)
// and of those it turned down (declined).
type RejectSummary struct {
	Reason    Reason `json:"reason"`
	Declined  int    `json:"declined"`
	Processed int    `json:"processed"`
}

// Funnel summarizes declines as Marathon does: each reason in funnel order
// with the offers that got that far and those it stopped. An offer is
// counted under its first reason only.
func Funnel(processed int, declined map[Reason]int) []RejectSummary {
	out := make([]RejectSummary, 0, len(Reasons))
	left := processed
	for _, r := range Reasons {
		d := declined[r]
		out = append(out, RejectSummary{Reason: r, Declined: d, Processed: left})
		left -= d
	}
	return out
}

// SinceLaunchAttempt is the funnel over every offer since the entry
// began.
func (s *OfferStats) SinceLaunchAttempt() []RejectSummary { return Funnel(s.Processed, s.since) }

// LastOffers is the funnel over the most recent unused offers alone.
func (s *OfferStats) LastOffers() []RejectSummary {
	declined := map[Reason]int{}
	for _, u := range s.last {
		if len(u.Reasons) > 0 {
			declined[u.Reasons[0]]++
		}
	}
	return Funnel(len(s.last), declined)
}
