package main

import (
	"fmt"

	"github.com/agora-cluster/agora/cluster/api"
)

func init() {
	register(command{name: "version", summary: "Print agora's version and the Mesos API version it speaks", run: func([]string) int {
		fmt.Printf("agora %s (Mesos API %s)\n", api.Version, api.MesosVersion)
		return 0
	}})
}
