// Package scheduler is agora's scheduler SDK: a driver for the Mesos v1
// scheduler HTTP API (POST /api/v1/scheduler) that every framework in this
// repository is built on.
//
// A Driver subscribes a framework with the master, follows 307 redirects to
// the leading master, keeps the RecordIO event stream open, watches the
// master's heartbeats, and re-subscribes with the framework ID it was given
// (failover) after a broken stream, with exponential backoff and jitter.
// Events are handed to a Handler from one goroutine; status updates that
// carry a uuid are acknowledged after the handler returns. Calls (Accept,
// Decline, Kill, Reconcile, ...) may be made from any goroutine, including
// from inside handler methods.
//
// A minimal framework:
//
//	var d *scheduler.Driver
//	h := scheduler.Funcs{
//		OnOffers: func(ctx context.Context, offers []mesos.Offer) {
//			for _, o := range offers {
//				_ = d.Decline(ctx, []mesos.OfferID{o.ID}, 5*time.Second)
//			}
//		},
//	}
//	d, err := scheduler.New(scheduler.Config{
//		Masters:   []string{"127.0.0.1:5050"},
//		Framework: mesos.FrameworkInfo{User: "root", Name: "example"},
//	}, h)
//	if err != nil { ... }
//	err = d.Run(ctx)
package scheduler
