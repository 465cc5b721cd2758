package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/frameworks/state"
	sparkclient "github.com/agora-cluster/agora/spark/client"
	"github.com/agora-cluster/agora/spark/dispatcher"
	"github.com/agora-cluster/agora/spark/sparktest"
)

func runSparkCmd(f func(args []string, stdout, stderr *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

var (
	sparkDriversCmd = func(a []string, o, e *bytes.Buffer) int { return sparkDrivers(a, o, e) }
	sparkStatusCmd  = func(a []string, o, e *bytes.Buffer) int { return sparkStatus(a, o, e) }
	sparkKillCmd    = func(a []string, o, e *bytes.Buffer) int { return sparkKill(a, o, e) }
	sparkLogsCmd    = func(a []string, o, e *bytes.Buffer) int { return sparkLogs(a, o, e) }
	sparkSubmitCmd  = func(a []string, o, e *bytes.Buffer) int { return sparkSubmit(a, o, e) }
)

// Missing arguments are usage errors (2); a dispatcher that is not there
// is a failure (1) saying so.
func TestSparkCommandsRefuseBadInput(t *testing.T) {
	refused := clustertest.RefusedAddr(t)
	for _, tc := range []struct {
		name string
		cmd  func(a []string, o, e *bytes.Buffer) int
		args []string
		code int
		err  string
	}{
		{"status without a submission", sparkStatusCmd, []string{"--dispatcher", refused}, 2, "Usage: agora spark status"},
		{"kill without a submission", sparkKillCmd, nil, 2, "Usage: agora spark kill"},
		{"logs without a submission", sparkLogsCmd, nil, 2, "Usage: agora spark logs"},
		{"drivers, nothing there", sparkDriversCmd, []string{"--dispatcher", refused}, 1, "agora spark drivers: spark dispatcher at http://" + refused + " is not reachable"},
		{"kill, nothing there", sparkKillCmd, []string{"driver-1", "--dispatcher", "mesos://" + refused}, 1, "is not reachable"},
		{"unknown flag", sparkDriversCmd, []string{"--dispatchr", refused}, 2, "flag provided but not defined"},
	} {
		code, _, stderr := runSparkCmd(tc.cmd, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.err) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, code, stderr, tc.code, tc.err)
		}
	}
}

// agora spark cluster-manager --help teaches the settings of a client-mode
// driver's credentials (exit 0, on stdout); an argument is a usage error.
func TestSparkClusterManagerHelp(t *testing.T) {
	out, err := exec.Command(agoraBin, "spark", "cluster-manager", "--help").Output()
	if err != nil {
		t.Fatalf("agora spark cluster-manager --help: %v", err)
	}
	for _, w := range []string{"--jars \"$(agora spark cluster-manager)\"", "spark.agora.principal=NAME", "spark.agora.secret.file=FILE", "spark.agora.ssl.ca_file=FILE"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("agora spark cluster-manager --help does not say %q:\n%s", w, out)
		}
	}
	cmd := exec.Command(agoraBin, "spark", "cluster-manager", "extra")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), "Usage: agora spark cluster-manager") {
		t.Errorf("agora spark cluster-manager extra: %v, %q; want exit 2 with the usage", err, stderr.String())
	}
}

// Against a dispatcher on a real cluster with the real Spark: a SparkPi
// submitted through the client finishes; drivers lists it (table and
// JSON), status shows it, logs prints π from its sandbox and the driver's
// log, kill of an ended driver and status of an unknown one fail with the
// dispatcher's words.
func TestSparkCommandsAgainstDispatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real Spark; not in -short")
	}
	home := sparktest.Home(t)
	jar := sparktest.PiJar(t, home)
	c := clustertest.Start(t, clustertest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatcher.New(dispatcher.Config{Masters: []string{c.MasterAddr}, Listener: ln, WorkDir: t.TempDir(), SparkHome: home})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the dispatcher did not stop within 30s")
		}
	})
	addr := d.Addr()
	cl, _ := sparkclient.New(addr)
	var id string
	for deadline := time.Now().Add(time.Minute); id == ""; time.Sleep(50 * time.Millisecond) {
		id, err = cl.Create(ctx, sparkclient.CreateSubmissionRequest{
			AppResource: "file:" + jar, MainClass: sparktest.PiClass, AppArgs: []string{"4"},
			SparkProperties:      map[string]string{"spark.app.name": "pi", "spark.driver.memory": "512m", "spark.ui.enabled": "false"},
			EnvironmentVariables: map[string]string{"SPARK_LOCAL_IP": "127.0.0.1"},
		})
		if err != nil && (time.Now().After(deadline) || !strings.Contains(err.Error(), "not ready")) {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		r, err := cl.Status(ctx, id)
		if err == nil && r.DriverState == sparkclient.StateFinished {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not finish: %+v %v", id, r, err)
		}
	}

	code, out, errOut := runSparkCmd(sparkDriversCmd, "--dispatcher", addr)
	if code != 0 || !regexp.MustCompile(id+`\s+pi\s+FINISHED\s+1\s+896\s+0\s+localhost`).MatchString(out) {
		t.Errorf("drivers: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runSparkCmd(sparkDriversCmd, "--dispatcher", addr, "--json")
	var ds []sparkclient.Driver
	if err := json.Unmarshal([]byte(out), &ds); code != 0 || err != nil || len(ds) != 1 || ds[0].ID != id || ds[0].TaskState != "TASK_FINISHED" {
		t.Errorf("drivers --json: exit %d, %v\n%s", code, err, out)
	}
	code, out, _ = runSparkCmd(sparkStatusCmd, id, "--dispatcher", addr)
	if code != 0 || !regexp.MustCompile(`State:\s+FINISHED`).MatchString(out) || !strings.Contains(out, "1 cpus, 896 MB (heap 512 MB)") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out, errOut = runSparkCmd(sparkLogsCmd, id, "--dispatcher", addr, "--master", c.MasterAddr)
	if code != 0 || !strings.HasPrefix(out, "Pi is roughly 3.1") {
		t.Errorf("logs: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runSparkCmd(sparkLogsCmd, id, "--stderr", "--dispatcher", addr, "--master", c.MasterAddr)
	if code != 0 || !strings.Contains(out, "Job 0 finished") {
		t.Errorf("logs --stderr: exit %d\n%s", code, out)
	}
	code, _, errOut = runSparkCmd(sparkKillCmd, id, "--dispatcher", addr)
	if code != 1 || !strings.Contains(errOut, "Driver already terminated") {
		t.Errorf("kill of an ended driver: exit %d, %q", code, errOut)
	}
	code, _, errOut = runSparkCmd(sparkStatusCmd, "driver-x", "--dispatcher", addr)
	if code != 1 || !strings.Contains(errOut, "Cannot find driver driver-x") {
		t.Errorf("status of an unknown driver: exit %d, %q", code, errOut)
	}
}

// agora dev --spark_port runs the dispatcher beside the cluster: its
// framework subscribes with the dev master and it answers the protocol
// and `agora spark drivers` on that port. With --secure, the dispatcher
// and the executors' scheduler subscribe as principal 'framework', and the
// dispatcher's REST server asks for the master's credentials over TLS
// (401 without), keeping the executors' scheduler API open to drivers.
func TestDevRunsSparkDispatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Spark distribution; not in -short")
	}
	sparktest.Home(t) // installed, as the dispatcher's drivers need
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) { devRunsSparkDispatcher(t, secure) })
	}
}

func devRunsSparkDispatcher(t *testing.T, secure bool) {
	port, _ := clustertest.PortRange(1)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	work := t.TempDir()
	args := []string{"dev", "--agents", "1", "--port=0", "--hadoop_port", "0", "--marathon_port", "0", "--chronos_port", "0", "--dns_port", "0",
		"--spark_port", strconv.Itoa(port), "--work_dir", work}
	if secure {
		args = append(args, "--secure")
	}
	dev, master := startBound(t, args...)
	stateClient := state.Client{}
	cl, _ := sparkclient.New("mesos://" + addr)
	var cliCred []string // what agora spark commands are given besides --dispatcher
	dispatcher := addr
	if secure {
		secretFile := filepath.Join(work, "secure", "operator.secret")
		secret, err := os.ReadFile(secretFile)
		if err != nil {
			t.Fatal(err)
		}
		op := auth.Credential{Principal: "operator", Secret: strings.TrimSpace(string(secret))}
		// --secure serves the master over TLS with the CA it generated.
		caFile := filepath.Join(work, "secure", "tls", "ca.pem")
		tlsc := tlsClient(t, caFile)
		stateClient.HTTPS = true
		stateClient.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: &auth.Transport{Credential: op, Base: tlsc.Transport}}
		// The dispatcher too, asking for the master's credentials.
		cl, _ = sparkclient.NewWithHTTP("https://"+addr, stateClient.HTTP)
		cliCred = []string{"--principal", "operator", "--secret_file", secretFile, "--ca_file", caFile}
		dispatcher = "https://" + addr
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s, err := stateClient.Master(context.Background(), master)
		if err == nil && len(s.Slaves) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dev cluster's agent did not register within 60 s: %v", err)
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := cl.Status(context.Background(), "driver-x")
		if r.DriverState == sparkclient.StateNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dev cluster's dispatcher at %s: %+v, %v", addr, r, err)
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s, err := stateClient.Master(context.Background(), master)
		names := map[string]bool{}
		if err == nil {
			for _, f := range s.Frameworks {
				names[f.Name] = true
			}
		}
		if len(names) == 2 && names["Spark Cluster"] && names["Spark Executors"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Spark Cluster and Spark Executors frameworks subscribed with the dev master: %+v, %v", s, err)
		}
	}
	code, out, errOut := runSparkCmd(sparkDriversCmd, append([]string{"--dispatcher", dispatcher}, cliCred...)...)
	if code != 0 || !strings.HasPrefix(out, "SUBMISSION") {
		t.Errorf("drivers against the dev dispatcher: exit %d\n%s%s", code, out, errOut)
	}
	// The drivers page: open without --secure, behind the credentials with it.
	caFile := filepath.Join(work, "secure", "tls", "ca.pem")
	pageClient := http.DefaultClient
	pageBase := "http://" + addr
	if secure {
		pageClient, pageBase = tlsClient(t, caFile), "https://"+addr
	}
	for _, p := range []string{"/ui/", "/api/v1/drivers"} {
		resp, err := pageClient.Get(pageBase + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: http.StatusOK, true: http.StatusUnauthorized}[secure]; resp.StatusCode != want {
			t.Errorf("GET %s without credentials: %s, want %d", p, resp.Status, want)
		}
		if secure {
			secret, _ := os.ReadFile(filepath.Join(work, "secure", "operator.secret"))
			req, _ := http.NewRequest("GET", pageBase+p, nil)
			req.SetBasicAuth("operator", strings.TrimSpace(string(secret)))
			resp, err := pageClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s as operator: %s, want 200", p, resp.Status)
			}
		}
	}
	if !secure {
		// The executors' scheduler answers on the dispatcher's port.
		resp, err := http.Get("http://" + addr + "/v1/applications")
		if err != nil {
			t.Fatal(err)
		}
		var apps []json.RawMessage
		err = json.NewDecoder(resp.Body).Decode(&apps)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(apps) != 0 {
			t.Errorf("GET /v1/applications on the dispatcher's port: %s %v %s; want 200 []", resp.Status, err, apps)
		}
		return
	}
	// Spark's own clients send no credentials: refused. The executors'
	// scheduler wants a driver's token (or the operator's credentials),
	// and the port speaks TLS only: drivers verify it with the CA.
	for _, path := range []string{"/v1/submissions/status/driver-x", "/v1/applications"} {
		resp, err := tlsClient(t, caFile).Get("https://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET https://%s%s without credentials: %s %s, want 401", addr, path, resp.Status, b)
		}
	}
	if resp, err := http.Get("http://" + addr + "/v1/applications"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET http://%s/v1/applications over plain HTTP: %s; want no answer over plain HTTP", addr, resp.Status)
		}
	}

	// A real driver on the secured cluster: its cluster manager registers
	// with the token it was given, over TLS, and gets its executor.
	jar := sparktest.PiJar(t, sparktest.Home(t))
	code, out, errOut = runSparkCmd(sparkSubmitCmd, append(append([]string{"--dispatcher", dispatcher}, cliCred...),
		"--class", sparktest.PiClass, "--name", "secure-pi", "--driver-cores", "1", "--driver-memory", "512m",
		"--conf", "spark.ui.enabled=false", "--conf", "spark.executor.cores=1", "--conf", "spark.executor.memory=512m",
		"--conf", "spark.cores.max=1", "--conf", "spark.mesos.driverEnv.SPARK_LOCAL_IP=127.0.0.1",
		"file:"+jar, "4")...)
	id := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(id, "driver-") {
		t.Fatalf("agora spark submit on the secured dev cluster: exit %d, %q %q", code, out, errOut)
	}
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		st, err := cl.Status(context.Background(), id)
		if err == nil && sparkclient.Terminal(st.DriverState) {
			if st.DriverState != sparkclient.StateFinished {
				_, log, _ := runSparkCmd(sparkLogsCmd, append([]string{id, "--stderr", "--dispatcher", dispatcher, "--master", master}, cliCred...)...)
				t.Fatalf("driver %s ended %s: %s\n%s", id, st.DriverState, st.Message, lastLines(log, 40))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("driver %s did not finish within 4 minutes: %+v %v", id, st, err)
		}
	}
	var apps []struct {
		Submission string            `json:"submission"`
		Executors  []json.RawMessage `json:"executors"`
	}
	if err := stateClient.Get(context.Background(), "https://"+addr, "/v1/applications", &apps); err != nil ||
		len(apps) != 1 || apps[0].Submission != id || len(apps[0].Executors) != 1 {
		t.Errorf("the operator's /v1/applications after the driver: %+v, %v; want one application of %s with its executor", apps, err, id)
	}
	// agora spark logs reads the secured master and agent with the same
	// credentials and CA.
	code, out, errOut = runSparkCmd(sparkLogsCmd, append([]string{id, "--dispatcher", dispatcher, "--master", master}, cliCred...)...)
	if code != 0 || !strings.HasPrefix(out, "Pi is roughly 3.1") {
		t.Errorf("agora spark logs on the secured cluster: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// A client-mode spark-submit has no token: as the banner says, its
	// cluster manager presents the operator's credentials over TLS and
	// the application gets its executor.
	secretFile := filepath.Join(work, "secure", "operator.secret")
	clientConf := []string{"spark.agora.principal=operator", "spark.agora.secret.file=" + secretFile, "spark.agora.ssl.ca_file=" + caFile}
	for _, c := range clientConf {
		if !strings.Contains(dev.out.String(), "--conf "+c) {
			t.Errorf("the banner does not show client mode's --conf %s:\n%s", c, dev.out.String())
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	a := []string{"--master", "mesos://" + addr, "--deploy-mode", "client", "--jars", sparktest.ClusterManagerJar(t),
		"--driver-memory", "512m", "--conf", "spark.ui.enabled=false", "--conf", "spark.executor.cores=1",
		"--conf", "spark.executor.memory=512m", "--conf", "spark.cores.max=1"}
	for _, c := range clientConf {
		a = append(a, "--conf", c)
	}
	cmd := exec.CommandContext(sctx, filepath.Join(sparktest.Home(t), "bin/spark-submit"), append(a, "--class", sparktest.PiClass, jar, "4")...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGORA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "SPARK_LOCAL_IP=127.0.0.1")
	cmd.WaitDelay = 10 * time.Second
	client, err := cmd.CombinedOutput()
	if err != nil || !regexp.MustCompile(`Pi is roughly 3\.1`).Match(client) {
		t.Fatalf("client-mode spark-submit with the operator's credentials: %v\n%s", err, lastLines(string(client), 40))
	}
	apps = nil
	if err := stateClient.Get(context.Background(), "https://"+addr, "/v1/applications", &apps); err != nil ||
		len(apps) != 2 || apps[1].Submission != "" || len(apps[1].Executors) != 1 {
		t.Errorf("the operator's /v1/applications after the client-mode driver: %+v, %v; want a second application, of no submission, with its executor", apps, err)
	}
}

// agora spark pyspark: an argument is a usage error (2), a directory that
// is not a Spark home a failure (1) that writes nothing into it.
func TestSparkPySparkRefusesBadInput(t *testing.T) {
	if code := runSparkPySpark([]string{"extra"}); code != 2 {
		t.Errorf("agora spark pyspark extra: exit %d; want 2", code)
	}
	dir := t.TempDir()
	if code := runSparkPySpark([]string{"--spark_home", dir}); code != 1 {
		t.Errorf("agora spark pyspark --spark_home (not a home): exit %d; want 1", code)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("wrote %v into a directory that is not a Spark home", ents)
	}
}

// `agora spark standalone` refuses bad flags before it installs or runs
// anything: usage errors (2) naming the flag.
func TestSparkStandaloneRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--worker-memory", "lots"}, "--worker-memory"},
		{[]string{"--worker-memory", "100m"}, "too little for an executor"},
		{[]string{"--workers-min", "3", "--workers-max", "2"}, "--workers-min 3 is more than --workers-max 2"},
		{[]string{"--workers-max", "0"}, "--workers-max 0"},
		{[]string{"--worker-cores", "-2"}, "negative worker size"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		var stderr bytes.Buffer
		if code := runSparkStandalone(append([]string{"--master", "127.0.0.1:1"}, tc.args...), &stderr); code != 2 || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.err)
		}
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
