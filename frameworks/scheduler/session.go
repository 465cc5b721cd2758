package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
)

// session makes one subscription, starting at master number m, and handles
// its events until the stream ends. It reports whether SUBSCRIBED arrived.
func (d *Driver) session(ctx context.Context, m int) (subscribed bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// One timer watches the whole subscription: connect, headers and first
	// event within ConnectTimeout, then an event every heartbeat interval.
	timeout := d.cfg.ConnectTimeout
	var heard atomic.Bool // SUBSCRIBED arrived: silence now means missed heartbeats
	watchdog := time.AfterFunc(timeout, func() {
		if heard.Load() {
			cancel(ErrHeartbeatTimeout)
		} else {
			cancel(errConnectTimeout)
		}
	})
	defer watchdog.Stop()

	first, err := d.endpointFor(sctx, m)
	if err != nil {
		return false, err // it says why there is no master to subscribe with
	}
	resp, ep, err := d.subscribe(sctx, first)
	if err != nil {
		return false, streamErr(sctx, err)
	}
	defer resp.Body.Close()
	following := make(chan struct{})
	defer close(following)
	go d.followLeader(ep, cancel, following)
	streamID := resp.Header.Get("Mesos-Stream-Id")
	if streamID == "" {
		return false, fmt.Errorf("master %s answered SUBSCRIBE without a Mesos-Stream-Id header", ep.Host)
	}
	d.mu.Lock()
	d.endpoint, d.streamID, d.cancel = ep, streamID, cancel
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.streamID == streamID {
			d.streamID, d.subscribed, d.cancel = "", false, nil
		}
		d.mu.Unlock()
		if subscribed && ctx.Err() == nil && !d.tornDown.Load() {
			d.log.Warn("disconnected from master", "master", ep.Host, "err", err)
			d.h.Disconnected(ctx, err)
		}
	}()

	events := api.NewRecordReader(resp.Body)
	for {
		watchdog.Reset(timeout)
		rec, err := events.ReadRecord()
		watchdog.Stop()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("master %s closed the event stream", ep.Host)
			}
			return subscribed, streamErr(sctx, err)
		}
		var ev scheduler.Event
		if err := d.codec.Unmarshal(rec, &ev); err != nil {
			return subscribed, fmt.Errorf("decode event from master %s: %w", ep.Host, err)
		}
		if !subscribed && ev.Type != scheduler.Event_SUBSCRIBED && ev.Type != scheduler.Event_ERROR {
			return false, fmt.Errorf("master %s sent %s before SUBSCRIBED", ep.Host, ev.Type)
		}
		if ev.Type == scheduler.Event_SUBSCRIBED {
			hb, err := d.subscribedTo(ep, ev.GetSubscribed())
			if err != nil {
				return subscribed, err
			}
			subscribed = true
			heard.Store(true)
			timeout = time.Duration(d.cfg.MissedHeartbeats) * hb
			if hb <= 0 {
				timeout = 24 * time.Hour // the master promised no heartbeats
			}
		}
		ack, err := d.dispatch(ctx, &ev)
		if err != nil {
			return subscribed, err
		}
		if ack != nil {
			d.ackAsync(ctx, *ack)
		}
	}
}

// streamErr prefers the reason the stream's context was cancelled for.
func streamErr(sctx context.Context, err error) error {
	if sctx.Err() != nil {
		if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
	}
	return err
}

// subscribedTo records a SUBSCRIBED event and returns the heartbeat interval.
func (d *Driver) subscribedTo(ep *url.URL, s *scheduler.Event_Subscribed) (time.Duration, error) {
	id := s.GetFrameworkID().GetValue()
	if id == "" {
		return 0, fmt.Errorf("master %s sent SUBSCRIBED without a framework_id", ep.Host)
	}
	d.mu.Lock()
	d.info.ID = &mesos.FrameworkID{Value: id}
	d.subscribed = true
	d.master = s.GetMasterInfo()
	d.mu.Unlock()
	hb := time.Duration(s.GetHeartbeatIntervalSeconds() * float64(time.Second))
	d.log.Info("subscribed", "framework_id", id, "master", ep.Host, "heartbeat", hb)
	return hb, nil
}

// subscribe posts SUBSCRIBE to ep, following redirects to the leader, and
// returns the 200 response whose body is the event stream.
func (d *Driver) subscribe(ctx context.Context, ep *url.URL) (*http.Response, *url.URL, error) {
	d.mu.Lock()
	info := d.info
	call := &scheduler.Call{
		Type:        scheduler.Call_SUBSCRIBE,
		FrameworkID: info.ID,
		Subscribe:   &scheduler.Call_Subscribe{FrameworkInfo: &info, SuppressedRoles: d.suppressed},
	}
	body, err := d.codec.Marshal(call)
	d.mu.Unlock()
	if err != nil {
		return nil, ep, fmt.Errorf("encode SUBSCRIBE for framework %q: %w", info.Name, err)
	}
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.String(), bytes.NewReader(body))
		if err != nil {
			return nil, ep, fmt.Errorf("subscribe with master %s: %w", ep.Host, err)
		}
		req.Header.Set("Content-Type", d.codec.MediaType)
		req.Header.Set("Accept", d.codec.MediaType)
		req.Header.Set("User-Agent", "agora-scheduler/"+api.Version)
		d.authorize(req)
		req.Close = true
		resp, err := d.stream.Do(req)
		if err != nil {
			return nil, ep, fmt.Errorf("subscribe with master %s: %w", ep.Host, err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if ct != d.codec.MediaType {
				resp.Body.Close()
				return nil, ep, fmt.Errorf("master %s answered SUBSCRIBE with Content-Type %q, want %q", ep.Host, resp.Header.Get("Content-Type"), d.codec.MediaType)
			}
			return resp, ep, nil
		case http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound, http.StatusMovedPermanently:
			loc := resp.Header.Get("Location")
			drain(resp)
			if hop >= maxRedirects {
				return nil, ep, fmt.Errorf("subscribe: more than %d redirects, last from master %s", maxRedirects, ep.Host)
			}
			next, err := Redirect(ep, loc)
			if err != nil {
				return nil, ep, err
			}
			d.log.Info("following redirect to the leading master", "from", ep.Host, "to", next.Host)
			ep = next
		default:
			e := apiError(resp, "SUBSCRIBE", ep.Host)
			if permanentSubscribeStatus(e.Code) {
				return nil, ep, fatal{e}
			}
			return nil, ep, e
		}
	}
}

// apiError reads a refused call's status and message and closes the body.
func apiError(resp *http.Response, call, master string) *APIError {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return &APIError{Call: call, Master: master, Code: resp.StatusCode, Message: string(bytes.TrimSpace(b))}
}

// drain reads what is left of a small response so its connection can be
// reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// dispatch hands one event to the handler. It returns the status to
// acknowledge now that the handler is done, if any, and a fatal error for
// an ERROR event.
func (d *Driver) dispatch(ctx context.Context, ev *scheduler.Event) (ack *mesos.TaskStatus, err error) {
	switch ev.Type {
	case scheduler.Event_SUBSCRIBED:
		d.h.Subscribed(ctx, ev.GetSubscribed())
	case scheduler.Event_OFFERS:
		d.h.Offers(ctx, ev.GetOffers().GetOffers())
	case scheduler.Event_RESCIND:
		d.h.Rescind(ctx, ev.GetRescind().GetOfferID())
	case scheduler.Event_UPDATE:
		status := ev.GetUpdate().GetStatus()
		d.h.Update(ctx, status)
		if needsAck(d.cfg.ManualAcks, status) {
			return &status, nil
		}
	case scheduler.Event_MESSAGE:
		d.h.Message(ctx, ev.GetMessage())
	case scheduler.Event_FAILURE:
		d.h.Failure(ctx, ev.GetFailure())
	case scheduler.Event_ERROR:
		msg := ev.GetError().GetMessage()
		d.h.Error(ctx, msg)
		return nil, fatal{&MasterError{Message: msg}}
	case scheduler.Event_HEARTBEAT:
		d.h.Heartbeat(ctx)
	default:
		d.log.Debug("ignoring event", "type", ev.Type.String())
	}
	return nil, nil
}

// needsAck reports whether the driver acknowledges an update by itself:
// only updates that carry a uuid are acknowledged (reconciliation answers
// and master-generated updates have none and must not be).
func needsAck(manual bool, status mesos.TaskStatus) bool {
	return !manual && len(status.UUID) > 0
}

// ackAsync acknowledges an update without holding up the event loop; at
// most maxInFlightAcks acknowledgements are in flight.
func (d *Driver) ackAsync(ctx context.Context, status mesos.TaskStatus) {
	select {
	case d.ackSlots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	d.acks.Add(1)
	go func() {
		defer func() { <-d.ackSlots; d.acks.Done() }()
		if err := d.Acknowledge(ctx, status); err != nil && ctx.Err() == nil && !d.tornDown.Load() {
			d.log.Warn("acknowledging status update", "task", status.TaskID.Value, "state", status.GetState().String(), "err", err)
		}
	}()
}
