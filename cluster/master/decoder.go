package master

import (
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-cluster/agora/cluster/api"
)

// Agents' calls are decoded, and the events of their streams encoded, on
// a few long-lived goroutines rather than on the handler's own. Every
// HTTP/2 request runs on a fresh goroutine with a small stack, and
// decoding a REGISTER (protobuf AgentInfo and tasks, gogo's deep frames)
// grew it twice, copying it and taking fresh stack memory each time; an
// agent's handler then lives on as its event stream's pump. Encoding an
// event there grew the stack again, and again after every collection that
// had shrunk the parked pump's stack back: each growth copies the whole
// deep HTTP/2 handler chain. When tens of thousands of agents re-register
// with a new leader at once, that growth was 8 % of the leader's CPU
// (decoding), then another 5 % (encoding): a codec worker's stack grows
// once and serves every call after it.
var codecWorkers struct {
	once sync.Once
	jobs chan func()
}

// onCodecWorker runs f on one of the codec workers and waits for it. The
// wait is bounded by f itself (callers pass pure encoding or decoding, no
// I/O): a caller never queues behind anything but other codec work. A
// panic in f (a codec bug met by hostile input) is returned as an error,
// as the handler's own goroutine would have had net/http recover it.
func onCodecWorker(f func() error) error {
	codecWorkers.once.Do(func() {
		n := runtime.GOMAXPROCS(0)
		codecWorkers.jobs = make(chan func())
		for range n {
			go func() {
				for j := range codecWorkers.jobs {
					j()
				}
			}()
		}
	})
	done := make(chan error, 1)
	codecWorkers.jobs <- func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("codec failed: %v", r)
			}
		}()
		done <- f()
	}
	return <-done
}

// decodeAgentCall decodes body into call with codec on a codec worker.
func decodeAgentCall(codec api.Codec, body []byte, call *api.AgentCall) error {
	return onCodecWorker(func() error { return codec.UnmarshalAgent(body, call) })
}

// maxEventsPerEncode bounds one encoding job: an agent with a long
// backlog (a failover's reconciliation, thousands of launches) has its
// events encoded a slice at a time, so that the agents' calls waiting to
// be decoded on the same workers never wait for a whole backlog.
const maxEventsPerEncode = 64

// encodeAgentEvents frames items (the agent events an outbox gave up) as
// RecordIO records in codec on the codec workers, maxEventsPerEncode at a
// time. errs are the events left out (one that is not an agent event, or
// fails to encode); fatal is a codec that panicked, after which the
// stream must end (the agent re-registers and reconciles), as it did when
// net/http recovered the panic on the handler's goroutine: the events
// after it are not sent and must not be lost silently.
func encodeAgentEvents(codec api.Codec, items []any) (frames []byte, errs []error, fatal error) {
	for len(items) > 0 {
		batch := items[:min(len(items), maxEventsPerEncode)]
		items = items[len(batch):]
		fatal = onCodecWorker(func() error {
			for _, it := range batch {
				ev, _ := it.(*api.AgentEvent)
				if ev == nil {
					errs = append(errs, fmt.Errorf("agent outbox holds something other than an agent event: %T", it))
					continue
				}
				b, err := api.EncodeAgentEvent(codec, ev)
				if err != nil {
					errs = append(errs, fmt.Errorf("encode agent event: %w", err))
					continue
				}
				frames = api.AppendRecord(frames, b)
			}
			return nil
		})
		if fatal != nil {
			return frames, errs, fatal
		}
	}
	return frames, errs, nil
}

// httpDate is now as an HTTP Date header, formatted at most once a second
// for every stream that starts within it.
func httpDate(now time.Time) string {
	sec := now.Unix()
	if d := lastHTTPDate.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &formattedDate{sec: sec, text: now.UTC().Format(http.TimeFormat)}
	lastHTTPDate.Store(d)
	return d.text
}

type formattedDate struct {
	sec  int64
	text string
}

var lastHTTPDate atomic.Pointer[formattedDate]
