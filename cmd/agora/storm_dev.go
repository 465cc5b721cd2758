package main

import "fmt"

// stormRuntimeDefault decides the runtime of an `agora storm submit`
// whose --runtime was not given. A Nimbus named (--nimbus or
// AGORA_STORM_NIMBUS) or a Storm home (--storm_home, or `agora dist
// install storm` done) means real Storm, as before; with neither there is
// no Storm to submit to, so the topology runs on the native runtime on the
// cluster of --master (AGORA_MASTER, default agora dev's). why says so,
// for stderr; it is empty when real Storm is chosen.
func stormRuntimeDefault(nimbusNamed bool, home, master string) (runtime, why string) {
	if nimbusNamed || home != "" {
		return "storm", ""
	}
	return "native", fmt.Sprintf("no Storm distribution is installed (agora dist install storm) and no --nimbus given: "+
		"running the topology on agora's native runtime on the cluster of %s (--runtime storm to submit to a Nimbus)", master)
}

// stormDevLine is `agora dev`'s banner line for Storm: which runtime
// `agora storm submit` takes against the dev cluster.
func stormDevLine() string {
	if home := defaultStormHome(); home != "" {
		return "  storm       agora storm submit TOPOLOGY.yaml|JAR   (real Storm from " + home + ": start `agora storm scheduler` first; --runtime native for no JVM)"
	}
	return "  storm       agora storm submit TOPOLOGY.yaml   (native runtime: no Storm distribution installed)"
}
