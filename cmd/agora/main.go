// Command agora is the single agora binary: master, agent, dev cluster and
// client commands. This package holds flag parsing and wiring only.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/agora-cluster/agora/cluster/gcpace"
)

// command is one subcommand of the agora binary.
type command struct {
	name    string
	summary string
	run     func(args []string) int
	hidden  bool
	// paced: a long-running process on the host whose garbage collector
	// is paced by its live heap (cluster/gcpace) unless GOGC is set.
	paced bool
}

var commands = map[string]command{}

// register adds a subcommand; each lives in its own file and registers in init.
func register(c command) { commands[c.name] = c }

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	return dispatchTo("agora", "command", commands, usage, args)
}

// dispatchTo runs the subcommand of prog that args names. With no
// arguments it prints usage and exits 2; with -h, --help or help it prints
// usage and exits 0; an unknown name is an error, whose message calls the
// subcommands kind ("command", "benchmark"), and exits 2.
func dispatchTo(prog, kind string, cmds map[string]command, usage func(), args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: unknown %s %q\n\n", prog, kind, args[0])
		usage()
		return 2
	}
	if c.paced {
		gcpace.Start()
	}
	return c.run(args[1:])
}

// commandNames lists the names of cmds that are not hidden, sorted, for a
// usage message.
func commandNames(cmds map[string]command) []string {
	var names []string
	for n, c := range cmds {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// writeCommandList writes one "  NAME  SUMMARY" line per visible command,
// in name order, the summaries aligned after the longest name (a fixed
// width goes out of line when a longer command is added).
func writeCommandList(w io.Writer, cmds map[string]command) {
	names := commandNames(cmds)
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, cmds[n].summary)
	}
}

func usage() {
	names := commandNames(commands)
	var b strings.Builder
	b.WriteString("agora — a datacenter kernel that speaks the Mesos v1 HTTP API.\n\n")
	b.WriteString("Usage: agora COMMAND [flags] [args]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-12s %s\n", n, commands[n].summary)
	}
	b.WriteString("\nStart here: `agora dev` brings up a master, an agent and the web UI on :5050;\n")
	b.WriteString("then `agora run -- echo hello` runs a task on it.\n")
	b.WriteString("Client commands find the cluster through --master or AGORA_MASTER (default 127.0.0.1:5050).\n")
	b.WriteString("Run `agora COMMAND --help` for a command's flags.\n")
	fmt.Fprint(os.Stderr, b.String())
}
