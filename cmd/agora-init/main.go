// Command agora-init is the native containerizer's container init on its
// own in Go: the same code the agora binary runs as "agora __init", in a
// program that links nothing else. Every container starts one, and a small
// program starts faster than the whole agora binary (the Go runtime
// registers every interface table of a binary and faults in its pages
// before the init can run). A C program of the same protocol
// (containerinit/cinit) starts faster still, without a Go runtime: `make
// build` puts that one beside bin/agora as bin/agora-init when a C
// compiler is there, and this one otherwise. The agent uses it when it is
// the very program that agora was built with (see
// containerizer.NativeConfig.InitPath).
package main

import (
	"os"

	"github.com/agora-cluster/agora/cluster/containerizer/containerinit"
)

// An init or enter invocation never gets here: package containerinit runs
// it from its initializer. Anything else is told what this program is.
func main() { os.Exit(containerinit.Run()) }
