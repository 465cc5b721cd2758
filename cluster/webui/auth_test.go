package webui_test

import (
	"encoding/base64"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	sched "github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/cluster/master"
	"github.com/agora-cluster/agora/cluster/webui"
	"github.com/agora-cluster/agora/cluster/webui/webuitest"
)

// restrictedACLs: team-a sees frameworks and tasks that run as root and
// may read their sandboxes' files, but not agents or executors (so not an
// agent's /state, which lists them all); ops sees everything.
const restrictedACLs = `{
	"view_frameworks": [{"principals": {"values": ["team-a", "ops"]}, "users": {"type": "ANY"}}],
	"view_tasks": [{"principals": {"values": ["team-a", "ops"]}, "users": {"type": "ANY"}}],
	"view_executors": [
		{"principals": {"values": ["ops"]}, "users": {"type": "ANY"}},
		{"principals": {"type": "ANY"}, "users": {"type": "NONE"}}],
	"access_sandboxes": [{"principals": {"values": ["team-a", "ops"]}, "users": {"type": "ANY"}}],
	"view_agents": [
		{"principals": {"values": ["ops"]}, "agents": {"type": "ANY"}},
		{"principals": {"type": "ANY"}, "agents": {"type": "NONE"}}]
}`

// TestRestrictedPrincipal opens the UI of a cluster with authentication
// and ACLs as a principal that may see its task but not the agents: the
// pages say what it may not see instead of breaking or blaming the agent.
func TestRestrictedPrincipal(t *testing.T) {
	var (
		ops   = auth.Credential{Principal: "ops", Secret: "ops-secret"}
		teamA = auth.Credential{Principal: "team-a", Secret: "a-secret"}
		agt   = auth.Credential{Principal: "agent", Secret: "agent-secret"}
	)
	creds, err := auth.ParseCredentials([]byte(`{"credentials": [{"principal": "ops", "secret": "ops-secret"},
		{"principal": "agent", "secret": "agent-secret"}, {"principal": "team-a", "secret": "a-secret"}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Options{Credentials: creds, Frameworks: true, Agents: true, HTTPReadOnly: true, HTTPReadWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	acls, err := auth.ParseACLs([]byte(restrictedACLs))
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{
		UI:     webui.Handler(),
		Master: func(cfg *master.Config) { cfg.HTTP.Auth = authn; cfg.ACLs = acls },
		Agent: func(_ int, cfg *agent.Config) {
			cfg.Credential = agt
			cfg.HTTP.Auth = authn.Clone()
		},
		Credential: ops,
	})
	s := clustertest.SubscribeWith(t, c.MasterURL, `{"user":"root","name":"team-a-job","principal":"team-a"}`, teamA)
	offer := s.Offer()
	cmd := "sleep 600"
	s.MustCall(&sched.Call{Type: sched.Call_ACCEPT, Accept: &sched.Call_Accept{OfferIDs: []mesos.OfferID{offer.ID},
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{
			TaskInfos: []mesos.TaskInfo{{Name: "sleeper", TaskID: mesos.TaskID{Value: "sleeper"}, AgentID: offer.AgentID,
				Command: &mesos.CommandInfo{Value: &cmd}, Resources: offer.Resources}}}}}}})
	s.Until("sleeper", mesos.TASK_RUNNING)

	bctx := webuitest.NewBrowser(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(teamA.Principal+":"+teamA.Secret))
	// Every request of the tab presents team-a's credential, as a browser
	// does once signed in.
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": basic}}); err != nil {
		t.Fatal(err)
	}

	t.Run("task", func(t *testing.T) {
		run(t, bctx, "opening the task", chromedp.Navigate(c.MasterURL+"/?refresh=600#/task/"+s.ID+"/sleeper"))
		waitFor(t, bctx, "the sandbox's refusal", `!!document.querySelector('#sandbox-status .not-allowed')`)
		if got := texts(t, bctx, "#task-fields dd .state"); len(got) != 1 || got[0] != "RUNNING" {
			t.Errorf("team-a's own task shows state %v, want RUNNING", got)
		}
		shot(t, bctx, "not-allowed")
	})

	t.Run("agents", func(t *testing.T) {
		run(t, bctx, "opening the agents", chromedp.Navigate(c.MasterURL+"/?refresh=600#/agents"))
		waitFor(t, bctx, "the agents' refusal", `document.querySelector('#agents-table tbody').textContent.startsWith('Not allowed: 1 agents')`)
	})
}
