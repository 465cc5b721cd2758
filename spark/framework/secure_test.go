package framework

import (
	"context"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
)

// On a master asking for credentials everywhere, the scheduler subscribes
// as its principal and reads the master's agents (GET /master/slaves,
// --authenticate_http_readonly) with the same credentials.
func TestSchedulerOnSecureCluster(t *testing.T) {
	cred := auth.Credential{Principal: "spark", Secret: "spark-secret"}
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [{"principal": "spark", "secret": "spark-secret"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, Frameworks: true, HTTPReadOnly: true, HTTPReadWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{Master: func(c *master.Config) { c.HTTP.Auth = authn }, Credential: cred})
	s, err := New(Config{Masters: []string{c.MasterAddr}, SparkHome: "/opt/spark", Principal: cred.Principal, Secret: cred.Secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); clustertest.AwaitStop(t, "the spark scheduler", done) })
	var last error
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		agents, err := s.masterAgents(ctx)
		if err == nil && len(agents) == 1 {
			break
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler did not read the secure master's agents within 60 s: %v (agents %v)", last, agents)
		}
	}
}
