package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	stormclient "github.com/agora-cluster/agora/storm/client"
	"github.com/agora-cluster/agora/storm/stormtest"
)

func runStormCmd(f func(args []string, stdout, stderr *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

var (
	stormListCmd    = func(a []string, o, e *bytes.Buffer) int { return stormList(a, o, e) }
	stormInfoCmd    = func(a []string, o, e *bytes.Buffer) int { return stormInfo(a, o, e) }
	stormKillCmd    = func(a []string, o, e *bytes.Buffer) int { return stormKill(a, o, e) }
	stormWorkersCmd = func(a []string, o, e *bytes.Buffer) int { return stormWorkers(a, o, e) }
)

// Missing arguments are usage errors (2); a Nimbus that is not there is a
// failure (1) saying so.
func TestStormCommandsRefuseBadInput(t *testing.T) {
	refused := clustertest.RefusedAddr(t)
	for _, tc := range []struct {
		name string
		cmd  func(a []string, o, e *bytes.Buffer) int
		args []string
		code int
		err  string
	}{
		{"info without a topology", stormInfoCmd, []string{"--nimbus", refused}, 2, "Usage: agora storm info"},
		{"kill without a topology", stormKillCmd, nil, 2, "Usage: agora storm kill"},
		{"list, nimbus not there", stormListCmd, []string{"--nimbus", refused}, 1, "agora storm list: nimbus at " + refused + " is not reachable"},
		{"info, nimbus not there", stormInfoCmd, []string{"words", "--nimbus", refused}, 1, "is not reachable"},
		{"kill, nimbus not there", stormKillCmd, []string{"words", "--nimbus", refused}, 1, "is not reachable"},
		{"workers, nimbus not there", stormWorkersCmd, []string{"words", "--nimbus", refused}, 1, "agora storm workers: nimbus at " + refused + " is not reachable"},
		{"workers, native without a master", stormWorkersCmd, []string{"--runtime", "native"}, 2, "--runtime native needs --master"},
		{"deactivate, native without a master", stormDeactivateCmd, []string{"words", "--runtime", "native"}, 2, "agora storm deactivate: --runtime native needs --master"},
		{"activate without a topology", stormActivateCmd, []string{"--runtime", "native", "--master", refused}, 2, "Usage: agora storm activate"},
		{"activate, master not there", stormActivateCmd, []string{"words", "--runtime", "native", "--master", refused}, 1, "agora storm activate: find native topology \"words\" on master " + refused},
		{"deactivate, control principal without its secret", stormDeactivateCmd, []string{"words", "--runtime", "native", "--master", refused, "--control_principal", "ops"}, 2, "agora storm deactivate: --control_principal=ops needs its secret: --control_secret_file=FILE"},
		{"rebalance, control secret without its principal", stormRebalanceCmd, []string{"words", "--runtime", "native", "--master", refused, "--control_secret_file", "/nonexistent"}, 2, "agora storm rebalance: --control_secret_file needs --control_principal"},
		{"workers, two topologies", stormWorkersCmd, []string{"a", "b", "--nimbus", refused}, 2, "unexpected arguments"},
		{"unknown flag", stormListCmd, []string{"--nimbs", refused}, 2, "flag provided but not defined"},
	} {
		code, _, stderr := runStormCmd(tc.cmd, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.err) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, code, stderr, tc.code, tc.err)
		}
	}
}

// Against a real Storm: list shows the supervisor's slots and the
// topology, info its components' executors, kill removes it, and a second
// kill fails with Nimbus's NotAliveException.
func TestStormCommandsAgainstRealStorm(t *testing.T) {
	tier.Need(t, tier.Python, tier.PythonErr())
	cluster := stormtest.Start(t, 1, 1)
	c, _ := stormclient.New(cluster.Nimbus, stormclient.Options{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	jar, err := c.UploadJar(ctx, bytes.NewReader(stormtest.Jar(t)))
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := json.Marshal(map[string]any{"agora.test.dir": t.TempDir(), "agora.test.sentences": []string{"a b"},
		"topology.workers": 1, "topology.component.resources.onheap.memory.mb": 64})
	if err := c.Submit(ctx, "words", jar, string(conf), stormtest.WordTopology()); err != nil {
		t.Fatal(err)
	}
	nimbus := []string{"--nimbus", cluster.Nimbus}

	code, out, stderr := runStormCmd(stormListCmd, append(nimbus, "--json")...)
	var cs stormclient.ClusterSummary
	if code != 0 || json.Unmarshal([]byte(out), &cs) != nil || len(cs.Supervisors) != 1 || cs.Supervisors[0].NumWorkers != 1 ||
		len(cs.Topologies) != 1 || cs.Topologies[0].Name != "words" {
		t.Fatalf("storm list --json: exit %d, %s %s", code, out, stderr)
	}
	if code, out, _ := runStormCmd(stormListCmd, nimbus...); code != 0 || !strings.Contains(out, "TOPOLOGY") || !strings.Contains(out, "words") {
		t.Fatalf("storm list: exit %d\n%s", code, out)
	}
	// Executors are listed once the topology is scheduled.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, out, stderr = runStormCmd(stormInfoCmd, append([]string{"words"}, nimbus...)...)
		if code == 0 && strings.Contains(out, "sentences") && strings.Contains(out, "split") && strings.Contains(out, "record") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("storm info words: exit %d\n%s%s", code, out, stderr)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// workers: the one worker, on the supervisor's slot, runs every
	// component's executors (two of split).
	code, out, stderr = runStormCmd(stormWorkersCmd, append([]string{"words", "--json"}, nimbus...)...)
	var ws []stormWorkerRow
	if code != 0 || json.Unmarshal([]byte(out), &ws) != nil || len(ws) != 1 {
		t.Fatalf("storm workers words --json: exit %d, %s %s; want one worker", code, out, stderr)
	}
	if w := ws[0]; w.Topology != "words" || w.Host == "" || w.Port == 0 ||
		w.Executors["sentences"] != 1 || w.Executors["split"] != 2 || w.Executors["record"] != 1 {
		t.Errorf("storm workers words: %+v; want words' worker with sentences×1, split×2, record×1", w)
	}
	if code, out, _ := runStormCmd(stormWorkersCmd, nimbus...); code != 0 || !strings.Contains(out, "UPTIME") || !strings.Contains(out, "split×2") {
		t.Errorf("storm workers: exit %d\n%s", code, out)
	}
	if code, _, stderr := runStormCmd(stormWorkersCmd, append([]string{"nosuch"}, nimbus...)...); code != 1 || !strings.Contains(stderr, "NotAliveException") {
		t.Errorf("storm workers nosuch: exit %d, %q; want NotAliveException", code, stderr)
	}
	if code, out, stderr := runStormCmd(stormKillCmd, append([]string{"words", "--wait", "0"}, nimbus...)...); code != 0 || !strings.Contains(out, "killing words") {
		t.Fatalf("storm kill words: exit %d, %s %s", code, out, stderr)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		_, ok, err := c.TopologyByName(ctx, "words")
		if err == nil && !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("words still listed after kill (%v)", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	code, _, stderr = runStormCmd(stormKillCmd, append([]string{"words"}, nimbus...)...)
	if code != 1 || !strings.Contains(stderr, "NotAliveException") || !strings.Contains(stderr, "words") {
		t.Fatalf("second kill: exit %d, stderr %q; want 1 and NotAliveException naming words", code, stderr)
	}
}
