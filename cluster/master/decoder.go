package master

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/agora-cluster/agora/cluster/api"
)

// Agents' calls are decoded on a few long-lived goroutines rather than on
// the handler's own. Every HTTP/2 request runs on a fresh goroutine with
// a small stack, and decoding a REGISTER (protobuf AgentInfo and tasks,
// gogo's deep frames) grew it twice, copying it and taking fresh stack
// memory each time; an agent's handler then lives on as its event
// stream's pump, keeping the grown stack for as long as the agent stays.
// When tens of thousands of agents re-register with a new leader at once,
// that growth was about 8 % of the leader's CPU (and part of its memory):
// a decoder's stack grows once and serves every call after it.
var agentDecoders struct {
	once sync.Once
	jobs chan *decodeJob
}

type decodeJob struct {
	codec api.Codec
	body  []byte
	call  *api.AgentCall
	done  chan error
}

// decodeAgentCall decodes body into call with codec on one of the
// decoders, waiting for it. The wait is bounded by the decoding itself
// (no I/O): a caller never queues behind anything but other decodes.
func decodeAgentCall(codec api.Codec, body []byte, call *api.AgentCall) error {
	agentDecoders.once.Do(func() {
		n := runtime.GOMAXPROCS(0)
		agentDecoders.jobs = make(chan *decodeJob)
		for range n {
			go func() {
				for j := range agentDecoders.jobs {
					j.done <- j.decode()
				}
			}()
		}
	})
	j := &decodeJob{codec: codec, body: body, call: call, done: make(chan error, 1)}
	agentDecoders.jobs <- j
	return <-j.done
}

// decode runs the decoder, turning a panic (a decoder bug met by hostile
// input) into the call's error, as the handler's own goroutine would
// have had net/http recover it.
func (j *decodeJob) decode() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder failed: %v", r)
		}
	}()
	return j.codec.UnmarshalAgent(j.body, j.call)
}
