package executor

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/api"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5secs": 5 * time.Second, "15mins": 15 * time.Minute, "2.5secs": 2500 * time.Millisecond,
		"500ms": 500 * time.Millisecond, "1hrs": time.Hour, "2days": 48 * time.Hour, "1weeks": 7 * 24 * time.Hour,
		"10us": 10 * time.Microsecond, "7ns": 7, "1m30s": 90 * time.Second,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5", "secs", "-5secs", "5 parsecs"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
	// What the agent writes, the SDK reads.
	for _, d := range []time.Duration{5 * time.Second, 15 * time.Minute, 2 * time.Second, 1500 * time.Millisecond} {
		if got, err := ParseDuration(api.FormatDuration(d)); err != nil || got != d {
			t.Errorf("round trip of %v through %q: %v, %v", d, api.FormatDuration(d), got, err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	set := func(kv map[string]string) {
		for _, k := range []string{"MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID", "MESOS_DIRECTORY", "MESOS_SANDBOX", "MESOS_AGENT_ENDPOINT",
			"MESOS_CHECKPOINT", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "MESOS_RECOVERY_TIMEOUT", "MESOS_SUBSCRIPTION_BACKOFF_MAX"} {
			t.Setenv(k, kv[k])
		}
	}
	set(map[string]string{"MESOS_FRAMEWORK_ID": "fw", "MESOS_EXECUTOR_ID": "ex", "MESOS_DIRECTORY": "/sb", "MESOS_SANDBOX": "/mnt/sb",
		"MESOS_AGENT_ENDPOINT": "127.0.0.1:5051", "MESOS_CHECKPOINT": "1", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
		"MESOS_RECOVERY_TIMEOUT": "15mins", "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs"})
	cfg, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{FrameworkID: "fw", ExecutorID: "ex", Directory: "/sb", Sandbox: "/mnt/sb", AgentEndpoint: "127.0.0.1:5051",
		Checkpoint: true, ShutdownGracePeriod: 5 * time.Second, RecoveryTimeout: 15 * time.Minute, SubscriptionBackoffMax: 2 * time.Second}
	if cfg != want {
		t.Errorf("FromEnv = %+v, want %+v", cfg, want)
	}
	// The executor's token stays in its Config and leaves the environment
	// its tasks inherit.
	t.Setenv("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "tok")
	if cfg, err := FromEnv(); err != nil || cfg.AuthenticationToken != "tok" {
		t.Errorf("FromEnv with a token: %+v %v", cfg, err)
	}
	if v, ok := os.LookupEnv("MESOS_EXECUTOR_AUTHENTICATION_TOKEN"); ok {
		t.Errorf("the token is still in the environment: %q", v)
	}
	// Checkpointing needs the recovery settings; the IDs are required.
	set(map[string]string{"MESOS_EXECUTOR_ID": "ex", "MESOS_DIRECTORY": "/sb", "MESOS_AGENT_ENDPOINT": "h:1", "MESOS_CHECKPOINT": "1"})
	_, err = FromEnv()
	for _, name := range []string{"MESOS_FRAMEWORK_ID", "MESOS_RECOVERY_TIMEOUT", "MESOS_SUBSCRIPTION_BACKOFF_MAX"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("FromEnv without %s: %v", name, err)
		}
	}
}
