package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/counters"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
)

func init() {
	hadoopCommands["streaming"] = command{name: "streaming", summary: "Submit a Hadoop Streaming job and follow it to the end", run: runHadoopStreaming}
}

const streamingExtraUsage = `
agora's own options (anywhere on the line):
  --hadoop ADDR          the Hadoop framework, host:port (env AGORA_HADOOP; default ` + "%s" + `)
  --principal NAME       principal to authenticate as, to a framework that asks (env AGORA_PRINCIPAL)
  --secret_file FILE     file holding its secret (or env AGORA_SECRET, the secret itself)
  --ca_file FILE         CA that signed the framework's certificate: call a host:port over HTTPS
                         (an https:// --hadoop without it is verified against AGORA_CA_FILE)
  --user NAME            the job's user (Hadoop's user.name; default -D user.name, else yours);
                         a framework that asks for credentials takes the principal instead
  --detach               submit and exit without following the job

The job is checked before anything runs. Progress goes to stderr; the exit status is 0
when the job succeeds and 1 when it is refused or fails (the message names the failed
task and shows the end of its stderr).`

func runHadoopStreaming(args []string) int {
	api := serviceAPI{addr: hadoopAddrDefault(), opts: clientOptions{principal: os.Getenv("AGORA_PRINCIPAL")}, set: map[string]bool{}, conn: &serviceConn{}}
	// agora's own options taking a value; the rest are Hadoop Streaming's.
	user := ""
	own := map[string]*string{"hadoop": &api.addr, "principal": &api.opts.principal, "secret_file": &api.opts.secretFile, "ca_file": &api.opts.caFile, "user": &user}
	detach := false
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		switch dst, ok := own[name]; {
		case ok && strings.HasPrefix(a, "-") && hasValue:
			*dst = value
			api.set[name] = true
		case ok && strings.HasPrefix(a, "-"):
			if i+1 >= len(args) {
				fmt.Fprintf(os.Stderr, "agora hadoop streaming: --%s needs a value\n", name)
				return 2
			}
			*dst = args[i+1]
			api.set[name] = true
			i++
		case a == "--detach" || a == "-detach":
			detach = true
		default:
			rest = append(rest, a)
		}
	}
	cwd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora hadoop streaming:", err)
		return 1
	}
	spec, err := job.ParseStreaming(rest, cwd)
	if errors.Is(err, job.ErrHelp) || len(rest) == 0 {
		fmt.Fprintln(os.Stderr, job.StreamingUsage)
		fmt.Fprintf(os.Stderr, streamingExtraUsage+"\n", defaultHadoopAddr)
		if len(rest) == 0 {
			return 2
		}
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora hadoop streaming:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := hadoopClient(api)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora hadoop streaming:", err)
		return 2
	}
	if user == "" && !spec.Conf.IsSet(conf.JobUser) {
		user = osUser()
	}
	info, err := c.Submit(ctx, client.SubmitRequest{Spec: &spec, User: user})
	if errors.Is(err, job.ErrUsage) {
		fmt.Fprintln(os.Stderr, "agora hadoop streaming:", err)
		return 2
	}
	if err != nil {
		return hadoopFailure(api, "streaming", err)
	}
	fmt.Fprintf(os.Stderr, "agora hadoop streaming: running job %s: %d maps, %d reduces, output %s\n",
		info.ID, info.Maps.Total, info.Reduces.Total, info.Output)
	if detach {
		fmt.Println(info.ID)
		return 0
	}
	fmt.Fprintf(os.Stderr, "agora hadoop streaming: `agora hadoop status %s` shows it, `agora hadoop kill %s` stops it\n", info.ID, info.ID)
	last := ""
	final, err := c.Wait(ctx, info.ID, 500*time.Millisecond, func(j client.JobInfo) {
		line := fmt.Sprintf(" map %3d%% reduce %3d%%", int(j.MapProgress*100), int(j.ReduceProgress*100))
		if line != last {
			last = line
			fmt.Fprintf(os.Stderr, "agora hadoop streaming: %s\n", line)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "\nagora hadoop streaming: stopped following; job %s keeps running (`agora hadoop kill %s` stops it)\n", info.ID, info.ID)
			return 130
		}
		fmt.Fprintln(os.Stderr, "agora hadoop streaming:", err)
		return 1
	}
	if final.State != jobtracker.JobSucceeded {
		fmt.Fprintf(os.Stderr, "agora hadoop streaming: job %s %s: %s\n", final.ID, strings.ToLower(string(final.State)), final.Error)
		return 1
	}
	fmt.Fprintf(os.Stderr, "agora hadoop streaming: job %s completed successfully in %s\n", final.ID, final.Elapsed(time.Now()).Round(time.Millisecond))
	printCounters(os.Stderr, final.Counters)
	fmt.Fprintf(os.Stderr, "agora hadoop streaming: output directory: %s\n", final.Output)
	return 0
}

// printCounters prints counters as Hadoop's job client does.
func printCounters(w *os.File, c counters.Counters) {
	n := 0
	var groups []string
	for g, names := range c {
		groups = append(groups, g)
		n += len(names)
	}
	sort.Strings(groups)
	fmt.Fprintf(w, "Counters: %d\n", n)
	for _, g := range groups {
		fmt.Fprintf(w, "\t%s\n", g)
		var names []string
		for name := range c[g] {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Fprintf(w, "\t\t%s=%d\n", name, c[g][name])
		}
	}
}

// osUser is who runs this command, the default user of a job it submits,
// as Hadoop's client takes user.name from the JVM; "" if unknown.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}
