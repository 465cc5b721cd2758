package main

import "github.com/agora-cluster/agora/cluster/containerizer"

// The agent re-executes this binary as the init of every isolated
// container (containerizer.Native); the init reads its configuration from
// an inherited pipe, not from arguments.
func init() {
	register(command{name: containerizer.InitCommand, summary: "Container init (started by the agent)", hidden: true,
		run: func([]string) int { return containerizer.RunInit() }})
}
