package scheduler

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrNotSubscribed is returned by calls made while the driver has no
// subscription (before SUBSCRIBED, or between a lost stream and the next one).
var ErrNotSubscribed = errors.New("scheduler: not subscribed with a master")

// ErrHeartbeatTimeout ends a stream on which the master missed too many
// heartbeats; the driver then re-subscribes.
var ErrHeartbeatTimeout = errors.New("scheduler: master missed its heartbeats")

// APIError is a non-2xx answer from the master's scheduler endpoint.
type APIError struct {
	Call    string // call type, e.g. "ACCEPT"
	Master  string // host:port that answered
	Code    int    // HTTP status code
	Message string // the body Mesos sends with the status, trimmed
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("scheduler %s call to %s: %d %s", e.Call, e.Master, e.Code, msg)
}

// ClientError reports a 4xx: the call itself was refused and repeating it
// unchanged will not help (except 429, see Temporary).
func (e *APIError) ClientError() bool { return e.Code >= 400 && e.Code < 500 }

// ServerError reports a 5xx: the master could not handle the call now.
func (e *APIError) ServerError() bool { return e.Code >= 500 }

// Temporary reports statuses worth retrying later: 429 (rate limited) and
// 503 (no leader elected, or the master is still recovering).
func (e *APIError) Temporary() bool {
	return e.Code == http.StatusTooManyRequests || e.Code == http.StatusServiceUnavailable
}

// Unsubscribed reports a 403: the master no longer considers this stream
// subscribed. The driver re-subscribes by itself.
func (e *APIError) Unsubscribed() bool { return e.Code == http.StatusForbidden }

// StatusCode returns the HTTP status of err if it is (or wraps) an
// *APIError, and 0 otherwise.
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// MasterError is an ERROR event: the master refused the framework for good
// (for example "Framework has been removed"). Run returns it.
type MasterError struct {
	Message string
}

func (e *MasterError) Error() string { return "scheduler: master sent ERROR: " + e.Message }

// ConnectError is returned by Run when Config.MaxConnectFailures consecutive
// subscription attempts have failed.
type ConnectError struct {
	Masters  []string
	Attempts int
	Err      error // the last failure
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("scheduler: cannot subscribe with master %s after %d attempts: %v",
		strings.Join(e.Masters, ","), e.Attempts, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// fatal marks an error after which re-subscribing cannot help.
type fatal struct{ err error }

func (f fatal) Error() string { return f.err.Error() }
func (f fatal) Unwrap() error { return f.err }

// permanentSubscribeStatus reports SUBSCRIBE answers that retrying cannot
// change: bad or invalid FrameworkInfo, failed authentication or
// authorization, unsupported media type or API version.
func permanentSubscribeStatus(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
		http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusConflict,
		http.StatusUnsupportedMediaType, http.StatusNotImplemented:
		return true
	}
	return false
}
