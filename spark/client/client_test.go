package client_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/spark/client"
	"github.com/agora-cluster/agora/spark/dispatcher"
)

// The client against a dispatcher's handler that has not subscribed: a
// create is refused with Spark's message, status and kill of an unknown
// submission are errors holding the response.
func TestClientAgainstDispatcher(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := dispatcher.New(dispatcher.Config{Masters: []string{"127.0.0.1:1"}, Listener: ln, WorkDir: t.TempDir(), SparkHome: "/opt/spark"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	c, err := client.New("mesos://" + strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var re *client.ResponseError
	_, err = c.Create(ctx, client.CreateSubmissionRequest{AppResource: "file:/a.jar", MainClass: "A", AppArgs: []string{},
		SparkProperties: map[string]string{"spark.app.name": "a"}, EnvironmentVariables: map[string]string{}})
	if !errors.As(err, &re) || re.Response.Message != "Scheduler is not ready to take requests" {
		t.Errorf("create before the dispatcher subscribed: %v", err)
	}
	_, err = c.Create(ctx, client.CreateSubmissionRequest{MainClass: "A"})
	if !errors.As(err, &re) || re.Code != 400 || !strings.Contains(err.Error(), "'appResource' is missing") {
		t.Errorf("a create without an application: %v", err)
	}
	r, err := c.Status(ctx, "driver-x")
	if !errors.As(err, &re) || r.DriverState != client.StateNotFound {
		t.Errorf("status of an unknown submission: %+v, %v", r, err)
	}
	if _, err := c.Kill(ctx, "driver-x"); err == nil || err.Error() != "spark dispatcher: Cannot find driver" {
		t.Errorf("kill of an unknown submission: %v", err)
	}
	if ds, err := c.Drivers(ctx); err != nil || len(ds) != 0 {
		t.Errorf("drivers = %v, %v; want none", ds, err)
	}
}

func TestClientErrors(t *testing.T) {
	for _, a := range []string{"", "http://"} {
		if _, err := client.New(a); err == nil {
			t.Errorf("New(%q) took it", a)
		}
	}
	refused := clustertest.RefusedAddr(t)
	c, _ := client.New(refused)
	if _, err := c.Drivers(context.Background()); err == nil || !strings.Contains(err.Error(), "is not reachable") {
		t.Errorf("a dispatcher that is not there: %v", err)
	}
}
