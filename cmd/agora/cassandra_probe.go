package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cassandra/cql"
)

// cassandraProbe runs `agora cassandra probe`: the health check the
// framework gives each node's task, run by the agent where the node runs.
// Healthy exits 0; unhealthy exits 1 with one line naming the address and
// why; bad flags exit 2.
func cassandraProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora cassandra probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "", "the node's address (its rpc_address)")
	port := fs.Int("port", 9042, "its native-transport (CQL) port")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "agora cassandra probe: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected arguments %q", fs.Args())
	case *host == "":
		return fail("no --host")
	case *port <= 0 || *port > 65535:
		return fail("--port %d is not a port", *port)
	case *timeout <= 0:
		return fail("--timeout %s is not positive", *timeout)
	}
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := cql.Probe(ctx, addr, *timeout); err != nil {
		fmt.Fprintf(stderr, "agora cassandra probe: unhealthy: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	fmt.Fprintf(stdout, "agora cassandra probe: %s answers CQL and has joined the ring\n", addr)
	return 0
}
