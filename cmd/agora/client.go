package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/agora-cluster/agora/frameworks/scheduler"
	"github.com/agora-cluster/agora/frameworks/state"
)

// defaultMasterAddr is where client commands look for the master when
// neither --master nor AGORA_MASTER says otherwise.
const defaultMasterAddr = "127.0.0.1:5050"

// masterAddrDefault is the master's address from AGORA_MASTER or the
// default, for a --master flag.
func masterAddrDefault() string {
	if m := os.Getenv("AGORA_MASTER"); m != "" {
		return m
	}
	return defaultMasterAddr
}

// clientOptions are the flags client commands share.
type clientOptions struct {
	master  string
	json    bool
	verbose bool
}

// newClientFlags makes a flag set for a client command whose --help shows
// usage, what the command does and an example, then the flags. It
// registers --master; withJSON adds --json.
func newClientFlags(name, usage, about, example string, o *clientOptions, withJSON bool) *flag.FlagSet {
	fs := flag.NewFlagSet("agora "+name, flag.ContinueOnError)
	fs.StringVar(&o.master, "master", masterAddrDefault(), "master to talk to: host:port, http://host:port, or zk://host1:2181,host2:2181/path for the leader ZooKeeper names (env AGORA_MASTER)")
	if withJSON {
		fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: agora %s %s\n\n%s\n\nExample:\n  %s\n\nFlags:\n", name, usage, about, example)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a command's args; done is true when the command should
// exit with code: 0 after --help, 2 after a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	return 0, false
}

// clientLogger logs a client command's diagnostics to stderr, or nowhere
// unless verbose.
func clientLogger(verbose bool) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// masterFailure prints why a client command could not talk to the master
// and returns exit code 1. Connection failures read
// "cannot reach master at X: ...".
func masterFailure(cmd, master string, err error) int {
	if unreachable(err) {
		fmt.Fprintf(os.Stderr, "agora %s: cannot reach master at %s: %v\n", cmd, master, rootCause(err))
		return 1
	}
	fmt.Fprintf(os.Stderr, "agora %s: %v\n", cmd, err)
	return 1
}

// unreachable reports errors that mean nothing answered at all.
func unreachable(err error) bool {
	var ue *state.UnreachableError
	if errors.As(err, &ue) {
		return true
	}
	var ce *scheduler.ConnectError
	if errors.As(err, &ce) {
		var ne net.Error
		var oe *net.OpError
		var urle *url.Error
		return errors.As(ce.Err, &ne) || errors.As(ce.Err, &oe) || errors.As(ce.Err, &urle)
	}
	return false
}

// rootCause strips wrappers that only repeat the address.
func rootCause(err error) error {
	var ue *state.UnreachableError
	if errors.As(err, &ue) {
		return ue.Err
	}
	var urle *url.Error
	if errors.As(err, &urle) {
		return urle.Err
	}
	return err
}

// envFlag collects repeated --env K=V flags.
type envFlag map[string]string

func (e envFlag) String() string {
	var parts []string
	for k, v := range e {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (e envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not of the form NAME=VALUE", s)
	}
	e[k] = v
	return nil
}
