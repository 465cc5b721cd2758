package client

import (
	"errors"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"
)

// The exceptions Nimbus throws, for errors.Is.
var (
	ErrNotAlive        = errors.New("NotAliveException")
	ErrAlreadyAlive    = errors.New("AlreadyAliveException")
	ErrInvalidTopology = errors.New("InvalidTopologyException")
	ErrAuthorization   = errors.New("AuthorizationException")
)

// NimbusError is an exception Nimbus answered a call with: which call,
// for which topology, the exception and Nimbus's message.
type NimbusError struct {
	Call     string
	Topology string // the name or ID the call was about, if any
	Kind     error  // one of the Err values
	Msg      string
}

func (e *NimbusError) Error() string {
	what := e.Call
	if e.Topology != "" {
		what += " " + e.Topology
	}
	return fmt.Sprintf("nimbus %s: %s: %s", what, e.Kind, e.Msg)
}

func (e *NimbusError) Unwrap() error { return e.Kind }

// exceptions maps a call's result field IDs to the exception each holds.
type exceptions map[int16]error

// readException reads an exception struct ({1: string msg}).
func readException(r *rd) string {
	var msg string
	r.strct(map[int16]field{1: {thrift.STRING, func() { msg = r.str() }}})
	return msg
}
