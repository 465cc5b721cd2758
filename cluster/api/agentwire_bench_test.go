package api_test

import (
	"testing"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/clustertest"
)

var agentCodecs = []api.Codec{api.JSON, api.Protobuf}

func codecName(c api.Codec) string {
	if c == api.Protobuf {
		return "protobuf"
	}
	return "json"
}

// Decoding one re-registration with 10 tasks: the master's main cost per
// agent when every agent comes back to a new leader.
func BenchmarkDecodeReregistration(b *testing.B) {
	call := clustertest.Reregistration("S-1", "sim-1", 10)
	for _, codec := range agentCodecs {
		body, err := codec.MarshalAgent(call)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(codecName(codec), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var c api.AgentCall
				if err := codec.UnmarshalAgent(body, &c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Encoding it: each agent's cost, paid on the same cores as the master's
// in the failover benchmark.
func BenchmarkEncodeReregistration(b *testing.B) {
	call := clustertest.Reregistration("S-1", "sim-1", 10)
	for _, codec := range agentCodecs {
		b.Run(codecName(codec), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.MarshalAgent(call); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
