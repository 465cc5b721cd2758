package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agora-cluster/agora/frameworks/marathon"
)

// `agora apps` and `agora app ...` are clients of the services
// framework's Marathon API (agora marathon, or the one `agora dev` runs).

func init() {
	register(command{name: "apps", summary: "List the long-running apps (Marathon API)", run: func(args []string) int {
		return appsList(args, os.Stdout, os.Stderr)
	}})
	register(command{name: "app", summary: "One app (Marathon API): app show|deploy|scale|restart|rollback|delete", run: runApp})
}

var appCommands = map[string]command{
	"show": {name: "show", summary: "Show an app: its definition, instances and deployments", run: func(args []string) int { return appShow(args, os.Stdout, os.Stderr) }},
	"deploy": {name: "deploy", summary: "Create or change an app from its JSON definition (FILE, or - for stdin)", run: func(args []string) int {
		return appDeploy(args, os.Stdin, os.Stdout, os.Stderr)
	}},
	"scale":    {name: "scale", summary: "Set an app's instance count", run: func(args []string) int { return appChange("scale", args, os.Stdout, os.Stderr) }},
	"restart":  {name: "restart", summary: "Replace every instance of an app, by its upgrade strategy", run: func(args []string) int { return appChange("restart", args, os.Stdout, os.Stderr) }},
	"rollback": {name: "rollback", summary: "Roll back the deployment in progress, or else deploy the previous config version", run: func(args []string) int { return appChange("rollback", args, os.Stdout, os.Stderr) }},
	"delete":   {name: "delete", summary: "Delete an app and kill its instances", run: func(args []string) int { return appChange("delete", args, os.Stdout, os.Stderr) }},
}

const marathonAPIDefault = "127.0.0.1:8080"

func marathonAPI() string {
	if a := os.Getenv("AGORA_MARATHON"); a != "" {
		return a
	}
	return marathonAPIDefault
}

func runApp(args []string) int {
	return dispatchTo("agora app", "command", appCommands, func() {
		var b strings.Builder
		b.WriteString("Usage: agora app COMMAND [flags]\n\nAsks the services framework's Marathon API (--marathon, or AGORA_MARATHON; default " + marathonAPIDefault + ").\n\nCommands:\n")
		writeCommandList(&b, appCommands)
		b.WriteString("\nWith --watch, deploy, scale, restart and rollback follow the deployment until it ends:\nexit 0 when it succeeded, 1 when it failed or was canceled (the reason is printed).\n")
		fmt.Fprint(os.Stderr, b.String())
	}, args)
}

// appFlags makes the flag set of an app command: --marathon and, with
// asJSON, --json.
func appFlags(prog, usage, about string, stderr io.Writer, api *serviceAPI, asJSON *bool) *flag.FlagSet {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	api.register(fs, "marathon", marathonAPI(), "the Marathon API, host:port or http(s)://host:port (env AGORA_MARATHON)")
	if asJSON != nil {
		fs.BoolVar(asJSON, "json", false, "print JSON instead of a table")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s %s\n\n%s\n\nFlags:\n", prog, usage, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseInterspersed parses flags given before, between or after the
// positional arguments, and returns those.
func parseInterspersed(fs *flag.FlagSet, args []string) (pos []string, code int, done bool) {
	for {
		if code, done := parseFlags(fs, args); done {
			return nil, code, true
		}
		if fs.NArg() == 0 {
			return pos, 0, false
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// marathonError is an answer of the API that is not a success, with
// Marathon's message and, for a 422, the fields at fault.
type marathonError struct {
	code int
	body []byte
	hint string // what to pass after a 401
}

func (e *marathonError) Error() string {
	var m struct {
		Message string `json:"message"`
		Details []struct {
			Path   string   `json:"path"`
			Errors []string `json:"errors"`
		} `json:"details"`
	}
	if json.Unmarshal(e.body, &m) != nil || m.Message == "" {
		s := fmt.Sprintf("%d %s", e.code, strings.TrimSpace(string(e.body)))
		if e.code == http.StatusUnauthorized {
			s += e.hint
		}
		return s
	}
	s := m.Message
	for _, d := range m.Details {
		s += fmt.Sprintf("\n  %s: %s", d.Path, strings.Join(d.Errors, "; "))
	}
	return fmt.Sprintf("%s (%d)", s, e.code)
}

// marathonCall sends one request with an optional JSON body and decodes
// the answer into out (nil: not read).
func marathonCall(api serviceAPI, method, path string, body []byte, out any) error {
	base := api.base()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(marathon.AgoraFieldsHeader, "true") // goal, progress: agora's fields
	resp, err := api.do(req)
	if err != nil {
		return fmt.Errorf("the Marathon API at %s: %w (is `agora marathon` or `agora dev` running? --marathon says where)", api, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		me := &marathonError{code: resp.StatusCode, body: b}
		if me.code == http.StatusUnauthorized {
			me.hint = api.unauthorizedHint()
		}
		return me
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// appView is what the client reads of an app.
type appView struct {
	ID             string  `json:"id"`
	Cmd            *string `json:"cmd"`
	Instances      int     `json:"instances"`
	CPUs           float64 `json:"cpus"`
	Mem            float64 `json:"mem"`
	Version        string  `json:"version"`
	TasksRunning   int     `json:"tasksRunning"`
	TasksStaged    int     `json:"tasksStaged"`
	TasksHealthy   int     `json:"tasksHealthy"`
	TasksUnhealthy int     `json:"tasksUnhealthy"`
	HealthChecks   []any   `json:"healthChecks"`
	Deployments    []struct {
		ID string `json:"id"`
	} `json:"deployments"`
	VersionInfo *struct {
		LastConfigChangeAt string `json:"lastConfigChangeAt"`
	} `json:"versionInfo"`
	Tasks []struct {
		ID    string   `json:"id"`
		Host  string   `json:"host"`
		Ports []uint64 `json:"ports"`
		State string   `json:"state"`
		Ready bool     `json:"ready"`
		Goal  string   `json:"goal"`
		// Version is the app version the instance was launched at.
		Version            string `json:"version"`
		HealthCheckResults []struct {
			Alive bool `json:"alive"`
		} `json:"healthCheckResults"`
	} `json:"tasks"`
}

func (a appView) healthy() string {
	if len(a.HealthChecks) == 0 {
		return "-"
	}
	s := strconv.Itoa(a.TasksHealthy)
	if a.TasksUnhealthy > 0 {
		s += fmt.Sprintf(" (%d unhealthy)", a.TasksUnhealthy)
	}
	return s
}

func (a appView) deployments() string {
	var ids []string
	for _, d := range a.Deployments {
		ids = append(ids, d.ID)
	}
	return orDash(strings.Join(ids, ","))
}

func appsFail(prog string, err error, stderr io.Writer) int {
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return 1
}

func appsList(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	var asJSON bool
	fs := appFlags("agora apps", "[--json]", "Lists the apps: instances running and wanted, health, resources, deployments.", stderr, &api, &asJSON)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agora apps: unexpected arguments %q (agora app show ID shows one)\n", fs.Args())
		return 2
	}
	var raw struct {
		Apps []json.RawMessage `json:"apps"`
	}
	if err := marathonCall(api, "GET", "/v2/apps", nil, &raw); err != nil {
		return appsFail("agora apps", err, stderr)
	}
	if asJSON {
		return writeJSON(stdout, nonNilRows(raw.Apps))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRUNNING\tHEALTHY\tCPUS\tMEM\tDEPLOYMENTS\tVERSION")
	for _, r := range raw.Apps {
		var a appView
		if err := json.Unmarshal(r, &a); err != nil {
			return appsFail("agora apps", err, stderr)
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%g\t%g\t%s\t%s\n", a.ID, a.TasksRunning, a.Instances, a.healthy(), a.CPUs, a.Mem, a.deployments(), a.Version)
	}
	tw.Flush()
	return 0
}

func appShow(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	var asJSON bool
	fs := appFlags("agora app show", "ID [--json]", "Shows an app: its definition's essentials, its instances and its deployments.", stderr, &api, &asJSON)
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "agora app show: give exactly one app ID")
		return 2
	}
	var raw struct {
		App json.RawMessage `json:"app"`
	}
	if err := marathonCall(api, "GET", "/v2/apps"+appPath(pos[0])+"?embed=app.tasks", nil, &raw); err != nil {
		return appsFail("agora app show", err, stderr)
	}
	if asJSON {
		return writeJSON(stdout, raw.App)
	}
	var a appView
	if err := json.Unmarshal(raw.App, &a); err != nil {
		return appsFail("agora app show", err, stderr)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", a.ID)
	if a.Cmd != nil {
		fmt.Fprintf(tw, "Command:\t%s\n", *a.Cmd)
	}
	fmt.Fprintf(tw, "Instances:\t%d running, %d staged, %d wanted\n", a.TasksRunning, a.TasksStaged, a.Instances)
	fmt.Fprintf(tw, "Healthy:\t%s\n", a.healthy())
	fmt.Fprintf(tw, "Resources:\t%g CPUs, %g MB each\n", a.CPUs, a.Mem)
	fmt.Fprintf(tw, "Version:\t%s\n", a.Version)
	fmt.Fprintf(tw, "Deployments:\t%s\n", a.deployments())
	tw.Flush()
	if len(a.Tasks) == 0 {
		return 0
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tHOST\tPORTS\tSTATE\tHEALTH\tVERSION")
	for _, t := range a.Tasks {
		ports := make([]string, len(t.Ports))
		for i, p := range t.Ports {
			ports[i] = strconv.FormatUint(p, 10)
		}
		health := "-"
		if len(t.HealthCheckResults) > 0 {
			health = map[bool]string{true: "healthy", false: "unhealthy"}[t.HealthCheckResults[0].Alive]
		}
		state := t.State
		if t.Goal != "" && t.Goal != "Running" {
			state += " (" + strings.ToLower(t.Goal) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Host, orDash(strings.Join(ports, ",")), state, health, t.Version)
	}
	tw.Flush()
	return 0
}

// appPath is an app ID as it goes in a URL: /ID.
func appPath(id string) string { return "/" + strings.Trim(id, "/") }

// deployFlags are the flags of the commands that start a deployment.
type deployFlags struct {
	force   bool
	watch   bool
	timeout time.Duration
}

func (d *deployFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.force, "force", false, "override a deployment in progress on the app (Marathon's ?force=true)")
	fs.BoolVar(&d.watch, "watch", false, "follow the deployment until it ends (one that failed and was rolled back: until the rollback\nends); exit 0 when it succeeded, 1 when not")
	fs.DurationVar(&d.timeout, "watch_timeout", 30*time.Minute, "with --watch, give up after this long (exit 1)")
}

func (d *deployFlags) query() string {
	if d.force {
		return "?force=true"
	}
	return ""
}

func appDeploy(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var api serviceAPI
	var df deployFlags
	fs := appFlags("agora app deploy", "FILE|- [--watch] [--force]",
		"Creates or changes the app a JSON definition describes (Marathon's app JSON; its \"id\" names the app).", stderr, &api, nil)
	df.register(fs)
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "agora app deploy: give exactly one FILE (or - for stdin)")
		return 2
	}
	var body []byte
	var err error
	if pos[0] == "-" {
		body, err = io.ReadAll(stdin)
	} else {
		body, err = os.ReadFile(pos[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "agora app deploy: %v\n", err)
		return 2
	}
	var def struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &def); err != nil {
		fmt.Fprintf(stderr, "agora app deploy: %s is not JSON: %v\n", pos[0], err)
		return 2
	}
	if strings.Trim(def.ID, "/") == "" {
		fmt.Fprintf(stderr, "agora app deploy: %s has no \"id\": it names the app\n", pos[0])
		return 2
	}
	return startDeployment("agora app deploy", api, "PUT", "/v2/apps"+appPath(def.ID)+df.query(), body, df, stdout, stderr)
}

// startDeployment sends the request that starts a deployment, says which,
// and with --watch follows it.
func startDeployment(prog string, api serviceAPI, method, path string, body []byte, df deployFlags, stdout, stderr io.Writer) int {
	var c struct {
		DeploymentID string `json:"deploymentId"`
		Version      string `json:"version"`
	}
	if err := marathonCall(api, method, path, body, &c); err != nil {
		return appsFail(prog, err, stderr)
	}
	fmt.Fprintf(stdout, "deployment %s (version %s)\n", c.DeploymentID, c.Version)
	if !df.watch {
		return 0
	}
	return watchDeployment(prog, api, c.DeploymentID, df.timeout, stdout, stderr)
}

// deploymentState is what --watch reads of a deployment.
type deploymentState struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Reason         string `json:"reason"`
	CurrentStep    int    `json:"currentStep"`
	TotalSteps     int    `json:"totalSteps"`
	CurrentActions []struct {
		Action   string `json:"action"`
		App      string `json:"app"`
		Progress *struct {
			Instances  int      `json:"instances"`
			Started    int      `json:"started"`
			Healthy    int      `json:"healthy"`
			OldActive  int      `json:"oldActive"`
			WaitingFor []string `json:"waitingFor"`
		} `json:"progress"`
		ReadinessCheckResults []struct {
			TaskID string `json:"taskId"`
			Ready  bool   `json:"ready"`
		} `json:"readinessCheckResults"`
	} `json:"currentActions"`
	RollbackDeploymentID string `json:"rollbackDeploymentId"`
}

func (d deploymentState) line() string {
	var parts []string
	for _, a := range d.CurrentActions {
		s := a.Action + " " + a.App
		if p := a.Progress; p != nil {
			s += fmt.Sprintf(": %d/%d healthy, %d started", p.Healthy, p.Instances, p.Started)
			if p.OldActive > 0 {
				s += fmt.Sprintf(", %d old", p.OldActive)
			}
			if len(p.WaitingFor) > 0 {
				s += ", waiting for " + strings.Join(p.WaitingFor, ", ")
			}
		}
		notReady := 0
		for _, r := range a.ReadinessCheckResults {
			if !r.Ready {
				notReady++
			}
		}
		if notReady > 0 {
			s += fmt.Sprintf(", %d not ready", notReady)
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("step %d/%d  %s", d.CurrentStep, d.TotalSteps, strings.Join(parts, "; "))
}

// watchDeployment prints a deployment's progress as it changes until it
// ends: 0 when it succeeded, 1 when it failed, was canceled or the watch
// timed out. A deployment that failed or was canceled and rolled back is
// watched until its rollback ends too (still 1): the app is then back on
// its previous version, and free for the next change.
func watchDeployment(prog string, api serviceAPI, id string, limit time.Duration, stdout, stderr io.Writer) int {
	deadline := time.Now().Add(limit)
	last := ""
	ended := false // id failed or was canceled; now id is its rollback
	for {
		var hist []deploymentState
		err := marathonCall(api, "GET", "/v2/deployments?embed=history", nil, &hist)
		if err != nil {
			var me *marathonError
			if errors.As(err, &me) {
				return appsFail(prog, err, stderr)
			}
			fmt.Fprintf(stderr, "%s: %v; retrying\n", prog, err) // the framework may be restarting
		}
		for _, d := range hist {
			if d.ID != id {
				continue
			}
			switch {
			case ended && d.Status == "success":
				fmt.Fprintf(stdout, "rollback %s done: the previous version runs\n", id)
				return 1
			case ended && (d.Status == "failed" || d.Status == "canceled"):
				fmt.Fprintf(stdout, "rollback %s %s: %s\n", id, d.Status, d.Reason)
				return 1
			case d.Status == "success":
				fmt.Fprintf(stdout, "deployment %s succeeded\n", id)
				return 0
			case d.Status == "failed" || d.Status == "canceled":
				fmt.Fprintf(stdout, "deployment %s %s: %s\n", id, d.Status, d.Reason)
				if d.RollbackDeploymentID == "" {
					return 1
				}
				fmt.Fprintf(stdout, "watching the rollback, deployment %s\n", d.RollbackDeploymentID)
				id, ended, last = d.RollbackDeploymentID, true, ""
				continue
			}
			if l := d.line(); l != last {
				fmt.Fprintln(stdout, l)
				last = l
			}
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "%s: deployment %s still running after %s; stopped watching (it goes on)\n", prog, id, limit)
			return 1
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// appChange is `agora app scale|restart|rollback|delete ID ...`.
func appChange(verb string, args []string, stdout, stderr io.Writer) int {
	prog := "agora app " + verb
	var api serviceAPI
	var df deployFlags
	usage := map[string]string{"scale": "ID N [--watch]", "restart": "ID [--watch]", "rollback": "ID [--watch]", "delete": "ID [--watch]"}[verb]
	about := map[string]string{
		"scale":    "Sets the app's instance count (PUT /v2/apps/ID {\"instances\": N}).",
		"restart":  "Replaces every instance of the app, by its upgrade strategy (POST /v2/apps/ID/restart).",
		"rollback": "Rolls back the app's deployment in progress (DELETE /v2/deployments/DID); with none, deploys the app's previous config version.",
		"delete":   "Deletes the app and kills its instances (DELETE /v2/apps/ID).",
	}[verb]
	fs := appFlags(prog, usage, about, stderr, &api, nil)
	df.register(fs)
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	want := 1
	if verb == "scale" {
		want = 2
	}
	if len(pos) != want {
		fmt.Fprintf(stderr, "%s: usage: %s %s\n", prog, prog, usage)
		return 2
	}
	id := appPath(pos[0])
	switch verb {
	case "scale":
		n, err := strconv.Atoi(pos[1])
		if err != nil || n < 0 {
			fmt.Fprintf(stderr, "%s: %q is not an instance count (0 or more)\n", prog, pos[1])
			return 2
		}
		return startDeployment(prog, api, "PUT", "/v2/apps"+id+df.query(), []byte(fmt.Sprintf(`{"instances":%d}`, n)), df, stdout, stderr)
	case "restart":
		return startDeployment(prog, api, "POST", "/v2/apps"+id+"/restart"+df.query(), nil, df, stdout, stderr)
	case "delete":
		return startDeployment(prog, api, "DELETE", "/v2/apps"+id+df.query(), nil, df, stdout, stderr)
	}
	return appRollback(prog, api, id, df, stdout, stderr)
}

// appRollback rolls back the app's deployment in progress, or else
// deploys the newest kept version whose config differs from the current
// one, with every field as it was then.
func appRollback(prog string, api serviceAPI, id string, df deployFlags, stdout, stderr io.Writer) int {
	var cur struct {
		App appView `json:"app"`
	}
	if err := marathonCall(api, "GET", "/v2/apps"+id, nil, &cur); err != nil {
		return appsFail(prog, err, stderr)
	}
	if len(cur.App.Deployments) > 0 {
		did := cur.App.Deployments[0].ID
		fmt.Fprintf(stdout, "rolling back deployment %s\n", did)
		return startDeployment(prog, api, "DELETE", "/v2/deployments/"+did, nil, df, stdout, stderr)
	}
	var vs struct {
		Versions []string `json:"versions"`
	}
	if err := marathonCall(api, "GET", "/v2/apps"+id+"/versions", nil, &vs); err != nil {
		return appsFail(prog, err, stderr)
	}
	current := ""
	if cur.App.VersionInfo != nil {
		current = cur.App.VersionInfo.LastConfigChangeAt
	}
	var now map[string]json.RawMessage
	if err := marathonCall(api, "GET", "/v2/apps"+id+"/versions/"+cur.App.Version, nil, &now); err != nil {
		return appsFail(prog, err, stderr)
	}
	for _, v := range vs.Versions {
		var def map[string]json.RawMessage
		if err := marathonCall(api, "GET", "/v2/apps"+id+"/versions/"+v, nil, &def); err != nil {
			return appsFail(prog, err, stderr)
		}
		var info struct {
			VersionInfo *struct {
				LastConfigChangeAt string `json:"lastConfigChangeAt"`
			} `json:"versionInfo"`
		}
		b, _ := json.Marshal(def)
		_ = json.Unmarshal(b, &info)
		if info.VersionInfo == nil || info.VersionInfo.LastConfigChangeAt == current {
			continue
		}
		// Fields the old version left out are cleared, not kept from the
		// current one.
		for k := range now {
			if _, ok := def[k]; !ok {
				def[k] = json.RawMessage("null")
			}
		}
		delete(def, "version")
		delete(def, "versionInfo")
		body, _ := json.Marshal(def)
		fmt.Fprintf(stdout, "deploying version %s of %s (config of %s)\n", v, id, info.VersionInfo.LastConfigChangeAt)
		return startDeployment(prog, api, "PUT", "/v2/apps"+id+df.query(), body, df, stdout, stderr)
	}
	fmt.Fprintf(stderr, "%s: %s has no earlier config version to roll back to\n", prog, id)
	return 1
}
