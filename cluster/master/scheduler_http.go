package master

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/api"
)

// MaxRequestBody bounds a v1 API request body.
const MaxRequestBody = 16 << 20

// httpError is an answer other than success, with Mesos's status code.
type httpError struct {
	code       int
	msg        string
	retryAfter time.Duration // a 429's or 503's Retry-After
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// missingField is the 400 for a call without the field its type needs.
func missingField(field string) *httpError {
	return errorf(http.StatusBadRequest, "expecting '%s' to be present", field)
}

func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{code: http.StatusInternalServerError, msg: err.Error()}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	setRetryAfter(w, he.retryAfter) // ratelimit.go
	w.WriteHeader(he.code)
	io.WriteString(w, he.msg)
}

// readCall checks method, content type and size, and decodes the body into
// msg. It is shared by the scheduler and operator APIs.
func readCall(w http.ResponseWriter, r *http.Request, msg api.Message) (api.Codec, error) {
	codec, herr := api.ReadCall(w, r, msg, MaxRequestBody)
	if herr != nil {
		return codec, &httpError{code: herr.Code, msg: herr.Message}
	}
	return codec, nil
}

// serveScheduler is POST /api/v1/scheduler.
func (m *Master) serveScheduler(w http.ResponseWriter, r *http.Request) {
	var call scheduler.Call
	if _, err := readCall(w, r, &call); err != nil {
		writeError(w, err)
		return
	}
	if err := validateCall(&call); err != nil {
		writeError(w, err)
		return
	}
	if err := m.checkPrincipal(r, &call); err != nil { // authn.go
		writeError(w, err)
		return
	}
	if call.GetType() == scheduler.Call_SUBSCRIBE {
		m.serveSubscribe(w, r, &call)
		return
	}
	streamID := r.Header.Get("Mesos-Stream-Id")
	err, derr := m.await(r.Context(), func(reply func(error)) {
		if err := m.checkCallPrincipal(r, &call); err != nil { // authn.go
			reply(err)
			return
		}
		m.handleCall(&call, streamID, reply)
	})
	if derr != nil {
		answerLoopFailure(w, derr)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if call.GetType() == scheduler.Call_UPDATE_FRAMEWORK {
		w.WriteHeader(http.StatusOK) // as Mesos: 200 with no body
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// serveSubscribe answers SUBSCRIBE with a RecordIO event stream.
func (m *Master) serveSubscribe(w http.ResponseWriter, r *http.Request, call *scheduler.Call) {
	if r.Header.Get("Mesos-Stream-Id") != "" {
		writeError(w, errorf(http.StatusBadRequest, "subscribe calls should not include the 'Mesos-Stream-Id' header"))
		return
	}
	codec, err := api.ResponseCodec(r.Header.Get("Accept"))
	if err != nil {
		writeError(w, errorf(http.StatusNotAcceptable, "%v", err))
		return
	}
	conn := &schedConn{streamID: newUUID(), codec: codec, out: m.subscriberOutbox("scheduler")}
	var fw *framework
	err, derr := m.await(r.Context(), func(reply func(error)) {
		m.subscribe(call.Subscribe, conn, func(f *framework, err error) {
			fw = f
			reply(err)
		})
	})
	if derr != nil {
		// Gone before the answer: if the framework took the stream
		// meanwhile, it is disconnected as if the stream had ended.
		m.async(func() {
			conn.abandoned = true
			if conn.fw != nil {
				m.disconnected(conn.fw, conn)
			} else {
				conn.out.close()
			}
		})
		answerLoopFailure(w, derr)
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", codec.MediaType)
	w.Header().Set("Mesos-Stream-Id", conn.streamID)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rw := api.NewRecordWriter(w)
	m.pumpMessages(r.Context(), w, conn.out, conn.codec, rw)
	// The stream ended: the client went away or we closed it.
	m.async(func() { m.disconnected(fw, conn) })
}

// validateCall checks the shape of a call the way Mesos's validation does:
// the payload matching the type must be present.
func validateCall(c *scheduler.Call) error {
	bad := func(what string) error {
		return errorf(http.StatusBadRequest, "failed to validate scheduler::Call: expecting '%s' to be present", what)
	}
	t := c.GetType()
	if t == scheduler.Call_UNKNOWN {
		// A missing type decodes as UNKNOWN; both are refused as malformed.
		return bad("type")
	}
	if t == scheduler.Call_SUBSCRIBE {
		if c.Subscribe == nil {
			return bad("subscribe")
		}
		fi := c.Subscribe.FrameworkInfo
		if c.FrameworkID != nil && (fi.ID == nil || fi.ID.Value != c.FrameworkID.Value) {
			return errorf(http.StatusBadRequest, "failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'")
		}
		return nil
	}
	if c.FrameworkID == nil || c.FrameworkID.Value == "" {
		return bad("framework_id")
	}
	switch t {
	case scheduler.Call_ACCEPT:
		if c.Accept == nil {
			return bad("accept")
		}
	case scheduler.Call_DECLINE:
		if c.Decline == nil {
			return bad("decline")
		}
	case scheduler.Call_KILL:
		if c.Kill == nil {
			return bad("kill")
		}
	case scheduler.Call_SHUTDOWN:
		if c.Shutdown == nil {
			return bad("shutdown")
		}
	case scheduler.Call_ACKNOWLEDGE:
		if c.Acknowledge == nil {
			return bad("acknowledge")
		}
	case scheduler.Call_RECONCILE:
		if c.Reconcile == nil {
			return bad("reconcile")
		}
	case scheduler.Call_MESSAGE:
		if c.Message == nil {
			return bad("message")
		}
	case scheduler.Call_UPDATE_FRAMEWORK:
		if c.UpdateFramework == nil {
			return bad("update_framework")
		}
	}
	return nil
}

var _ = time.Second
