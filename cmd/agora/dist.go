package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/agora-cluster/agora/dist"
)

func init() {
	register(command{name: "dist", summary: "Install upstream engines (Hadoop, HDFS, ...) from Maven Central: dist install|list|known", run: runDist})
}

var distCommands = map[string]command{
	"install": {name: "install", summary: "Assemble a distribution's home directory in the cache and print its path", run: func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return distInstall(ctx, args, os.Stdout, os.Stderr)
	}},
	"list":  {name: "list", summary: "List the installed distributions", run: func(args []string) int { return distList(args, os.Stdout, os.Stderr) }},
	"known": {name: "known", summary: "List the distributions this binary can install", run: func(args []string) int { return distKnown(args, os.Stdout, os.Stderr) }},
}

func runDist(args []string) int {
	return dispatchTo("agora dist", "command", distCommands, distUsage, args)
}

func distUsage() {
	var b strings.Builder
	b.WriteString("Usage: agora dist COMMAND [flags] [NAME[@VERSION]...]\n\n")
	b.WriteString("Assembles the real upstream engines' home directories (lib/ with the jars, bin/, conf/)\n")
	b.WriteString("from their published jars on Maven Central, into a cache outside any repository\n")
	b.WriteString("(" + dist.DefaultDir() + "; --dist_dir or AGORA_DIST_DIR to change it). The adapters\n")
	b.WriteString("take such a home (--hadoop_home=DIR, ...) as they take an unpacked upstream tarball.\n\nCommands:\n")
	writeCommandList(&b, distCommands)
	b.WriteString("\nExample:\n  export HADOOP_HOME=$(agora dist install hadoop)\n  agora dist list\n")
	fmt.Fprint(os.Stderr, b.String())
}

func distFlags(name, args string, stderr io.Writer, about string) (*flag.FlagSet, *string, *bool) {
	fs := flag.NewFlagSet("agora dist "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dist_dir", dist.DefaultDir(), "the cache of distributions (env AGORA_DIST_DIR)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: agora dist %s [flags] %s\n\n%s\nFlags:\n", name, args, about)
		fs.PrintDefaults()
	}
	return fs, dir, asJSON
}

const distInstallAbout = `Assembles each named distribution's home in the cache from Maven Central (Maven
checks every jar against its published checksum), records the SHA-256 of every file,
and prints the home's path on stdout, one per line; progress goes to stderr. A home
already installed is verified and printed without asking any registry, so a second
install works offline. NAME alone is its default version; ` + "`agora dist known`" + ` lists
what can be installed.

Exit status: 0 when every home is there, 1 when an install failed (the message
names the artifact Maven could not fetch), 2 for an unknown name or version.
`

// distInstall runs `agora dist install NAME[@VERSION]...`.
func distInstall(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, dir, asJSON := distFlags("install", "NAME[@VERSION]...", stderr, distInstallAbout)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "agora dist install: name a distribution to install, e.g. `agora dist install hadoop`; `agora dist known` lists them")
		return 2
	}
	var ds []dist.Dist
	for _, spec := range fs.Args() {
		d, err := dist.Resolve(spec)
		if err != nil {
			fmt.Fprintln(stderr, "agora dist install:", err)
			return 2
		}
		ds = append(ds, d)
	}
	in := dist.Installer{Dir: *dir, Log: stderr}
	var homes []map[string]string
	for _, d := range ds {
		home, err := in.Install(ctx, d)
		if err != nil {
			fmt.Fprintln(stderr, "agora dist install:", err)
			return 1
		}
		if *asJSON {
			homes = append(homes, map[string]string{"name": d.Name, "version": d.Version, "home": home})
		} else {
			fmt.Fprintln(stdout, home)
		}
	}
	if *asJSON {
		return writeJSON(stdout, homes)
	}
	return 0
}

// distList runs `agora dist list`.
func distList(args []string, stdout, stderr io.Writer) int {
	fs, dir, asJSON := distFlags("list", "", stderr, "Lists the distributions installed in the cache, with their size and home.\n")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agora dist list: unexpected arguments %q\n", fs.Args())
		return 2
	}
	installed, err := dist.List(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "agora dist list:", err)
		return 1
	}
	if *asJSON {
		if installed == nil {
			installed = []dist.Installed{}
		}
		return writeJSON(stdout, installed)
	}
	if len(installed) == 0 {
		fmt.Fprintf(stderr, "agora dist list: nothing installed in %s; `agora dist install NAME` installs one\n", *dir)
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVERSION\tFILES\tSIZE\tINSTALLED\tHOME")
	for _, i := range installed {
		fmt.Fprintf(w, "%s\t%s\t%d\t%.1f MiB\t%s\t%s\n", i.Name, i.Version, len(i.Files),
			float64(i.Bytes)/(1<<20), i.Installed.Format("2006-01-02 15:04"), i.Home)
	}
	w.Flush()
	return 0
}

// distKnown runs `agora dist known`.
func distKnown(args []string, stdout, stderr io.Writer) int {
	fs, _, asJSON := distFlags("known", "", stderr, "Lists the distributions this binary can install; * marks the version NAME alone installs.\n")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *asJSON {
		return writeJSON(stdout, dist.Known())
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVERSION\tWHAT")
	for _, d := range dist.Known() {
		v := d.Version
		if d.Default {
			v += " *"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", d.Name, v, d.Summary)
	}
	w.Flush()
	return 0
}

// writeJSON prints v as indented JSON on w.
func writeJSON(w io.Writer, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora:", err)
		return 1
	}
	fmt.Fprintln(w, string(b))
	return 0
}
