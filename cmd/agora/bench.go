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
	names := commandNames(benchCommands)
	fmt.Fprint(os.Stderr, "Usage: agora bench BENCHMARK [flags]\n\nBenchmarks:\n")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, benchCommands[n].summary)
	}
	fmt.Fprint(os.Stderr, "\nExample:\n  agora bench launch --tasks 1000 --json\n")
}
