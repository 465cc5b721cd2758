package dispatcher

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/frameworks/scheduler"
)

// standIn runs a dispatcher on a real cluster whose Spark home is a
// stand-in: its spark-submit runs script. hook, if set, is the idle hook.
func standIn(t *testing.T, script string, hook func(*Dispatcher)) (*Dispatcher, *clustertest.Cluster) {
	t.Helper()
	return standInOn(t, clustertest.Options{}, auth.Credential{}, script, hook)
}

// standInOn is standIn on a cluster started with opts, the dispatcher
// presenting cred.
func standInOn(t *testing.T, opts clustertest.Options, cred auth.Credential, script string, hook func(*Dispatcher)) (*Dispatcher, *clustertest.Cluster) {
	t.Helper()
	return standInWith(t, opts, cred, script, hook, nil)
}

// standInWith is standInOn with edit, if set, changing the dispatcher's
// configuration before it starts.
func standInWith(t *testing.T, opts clustertest.Options, cred auth.Credential, script string, hook func(*Dispatcher), edit func(*Config)) (*Dispatcher, *clustertest.Cluster) {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "bin", "spark-submit"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Masters: []string{c.MasterAddr}, Listener: ln, WorkDir: t.TempDir(), SparkHome: home,
		Principal: cred.Principal, Secret: cred.Secret}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		d.idleHook = func() { hook(d) }
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
	return d, c
}

func standInRequest(t *testing.T) *CreateSubmissionRequest {
	t.Helper()
	req, _, err := ParseCreate([]byte(createJSON))
	if err != nil {
		t.Fatal(err)
	}
	req.AppResource = "local:/opt/app.jar"
	req.SparkProperties["spark.driver.memory"] = "64m"
	return req
}

func waitDriver(t *testing.T, d *Dispatcher, id string, cond func(Driver) bool) Driver {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		dr, _ := d.Get(id)
		if cond(dr) {
			return dr
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", id, dr)
		}
	}
}

// A driver submitted while a round of offers that found nothing to run is
// being declined (for an hour, and offers suppressed) is launched all the
// same: its revive reaches the master after that decline and suppress, or
// the round declines briefly and does not suppress. The Spark home is a
// stand-in whose spark-submit prints its arguments.
func TestSubmitDuringIdleRound(t *testing.T) {
	ids := clustertest.NewQueue[string](t)
	var once sync.Once
	req := standInRequest(t)
	d, _ := standIn(t, `echo "spark-submit $*"`, func(d *Dispatcher) {
		once.Do(func() {
			_, r := d.submit(req)
			ids.Put(r.SubmissionID)
		})
	})
	var id string
	select {
	case id = <-ids.C():
	case <-time.After(60 * time.Second):
		t.Fatal("no idle round of offers within 60s")
	}
	waitDriver(t, d, id, func(dr Driver) bool { return dr.State == StateFinished })
}

// A task still running for a driver that has ended (killed while its
// launch was on its way to the master) is killed when it is heard of.
func TestTaskOfEndedDriverKilled(t *testing.T) {
	d, c := standIn(t, "exec sleep 300", nil)
	for deadline := time.Now().Add(60 * time.Second); !d.Subscribed(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher did not subscribe")
		}
	}
	_, r := d.submit(standInRequest(t))
	dr := waitDriver(t, d, r.SubmissionID, func(dr Driver) bool { return dr.TaskState == "TASK_RUNNING" })
	d.mu.Lock()
	err := d.end(d.drivers[dr.ID], StateKilled, "killed before its launch arrived")
	d.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.sched.Reconcile(context.Background(), []mscheduler.Call_Reconcile_Task{scheduler.ReconcileTask(dr.TaskID, dr.AgentID)}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("the ended driver's task killed", func(s *clustertest.State) bool {
		for _, f := range s.Frameworks {
			for _, tk := range f.CompletedTasks {
				if tk.ID == dr.TaskID && tk.State == "TASK_KILLED" {
					return true
				}
			}
		}
		return false
	})
}

// On a master with --authenticate_frameworks the dispatcher subscribes,
// and launches a driver, as the principal it is given (without
// credentials its SUBSCRIBE would get a 401).
func TestDriverOnSecureCluster(t *testing.T) {
	cred := auth.Credential{Principal: "spark", Secret: "spark-secret"}
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [{"principal": "spark", "secret": "spark-secret"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, Frameworks: true, HTTPReadOnly: true, HTTPReadWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := clustertest.Options{Master: func(c *master.Config) { c.HTTP.Auth = authn }, Credential: cred}
	d, _ := standInOn(t, opts, cred, `echo "spark-submit $*"`, nil)
	for deadline := time.Now().Add(60 * time.Second); !d.Subscribed(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher did not subscribe with its credentials")
		}
	}
	_, r := d.submit(standInRequest(t))
	// Launched and finished: its ACCEPT passed the master's principal check.
	waitDriver(t, d, r.SubmissionID, func(dr Driver) bool { return dr.State == StateFinished })
}
