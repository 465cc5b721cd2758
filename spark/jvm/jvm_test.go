package jvm

import (
	"archive/zip"
	"context"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
)

// TestJarBuilds builds the cluster manager with Maven and checks that the
// jar registers it where Spark's ServiceLoader looks.
func TestJarBuilds(t *testing.T) {
	tier.Need(t, tier.JVM, tier.JavaErr())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	jar, err := Jar(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	z, err := zip.OpenReader(jar)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	want := map[string]bool{
		"META-INF/services/org.apache.spark.scheduler.ExternalClusterManager":  false,
		"org/apache/spark/scheduler/cluster/agora/AgoraClusterManager.class":   false,
		"org/apache/spark/scheduler/cluster/agora/AgoraSchedulerBackend.class": false,
	}
	for _, f := range z.File {
		if _, ok := want[f.Name]; ok {
			want[f.Name] = true
		}
	}
	for n, ok := range want {
		if !ok {
			t.Errorf("%s: no %s", jar, n)
		}
	}
}

func TestJarWithoutMaven(t *testing.T) {
	_, err := Jar(context.Background(), t.TempDir(), "/nonexistent/mvn")
	if err == nil {
		t.Fatal("built without Maven")
	}
	t.Log(err)
}
