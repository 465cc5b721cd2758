package main

import (
	"fmt"
	"os"
)

func init() {
	register(command{name: "bench", summary: "Benchmark a cluster through the public API (bench launch, ...)", run: runBench})
}

// benchCommands are the subcommands of `agora bench`; each file adds its own.
var benchCommands = map[string]command{}

func runBench(args []string) int {
	return dispatchTo("agora bench", "benchmark", benchCommands, benchUsage, args)
}

func benchUsage() {
	fmt.Fprint(os.Stderr, "Usage: agora bench BENCHMARK [flags]\n\nBenchmarks:\n")
	writeCommandList(os.Stderr, benchCommands)
	fmt.Fprint(os.Stderr, "\nExample:\n  agora bench launch --tasks 1000 --json\n")
}
