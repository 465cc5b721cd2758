package main

import (
	"fmt"
	"os"
	"sort"
)

func init() {
	register(command{name: "bench", summary: "Benchmark a cluster through the public API (bench launch, ...)", run: runBench})
}

// benchCommands are the subcommands of `agora bench`; each file adds its own.
var benchCommands = map[string]command{}

func runBench(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		benchUsage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := benchCommands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "agora bench: unknown benchmark %q\n\n", args[0])
		benchUsage()
		return 2
	}
	return c.run(args[1:])
}

func benchUsage() {
	var names []string
	for n := range benchCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprint(os.Stderr, "Usage: agora bench BENCHMARK [flags]\n\nBenchmarks:\n")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, benchCommands[n].summary)
	}
	fmt.Fprint(os.Stderr, "\nExample:\n  agora bench launch --tasks 1000 --json\n")
}
