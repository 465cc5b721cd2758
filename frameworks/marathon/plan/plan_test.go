package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/agora-cluster/agora/frameworks/offers"
)

// basic is the first app of Marathon's "application basics" page.
const basic = `{"id": "basic-0", "cmd": "while [ true ] ; do echo 'Hello Marathon' ; sleep 5 ; done", "cpus": 0.1, "mem": 10.0, "instances": 1}`

func decode(t *testing.T, body string) App {
	t.Helper()
	a, err := Decode([]byte(body), Defaults())
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	a.Normalize()
	return a
}

func TestDecodeDefaultsAndNormalize(t *testing.T) {
	a := decode(t, basic)
	if err := a.Validate(); err != nil {
		t.Fatalf("the docs' basic app is refused: %v", err)
	}
	if a.ID != "/basic-0" || a.CPUs != 0.1 || a.Mem != 10 || a.Instances != 1 || a.BackoffFactor != 1.15 || a.KillSelection != YoungestFirst {
		t.Fatalf("decoded %+v", a)
	}
	if len(a.PortDefinitions) != 1 || a.PortDefinitions[0].Port != 0 {
		t.Fatalf("an app without ports gets one dynamic port, as Marathon's; got %+v", a.PortDefinitions)
	}
	b := decode(t, `{"id":"/g/a","cmd":"x","ports":[0,0]}`)
	if len(b.PortDefinitions) != 2 || b.Ports != nil {
		t.Fatalf("ports become portDefinitions: %+v %+v", b.PortDefinitions, b.Ports)
	}
	c := decode(t, `{"id":"/g/a","cmd":"x","portDefinitions":[]}`)
	if c.PortCount() != 0 {
		t.Fatalf("explicitly no ports: %+v", c.PortDefinitions)
	}
	// An update keeps what the body leaves out.
	up, err := Decode([]byte(`{"instances": 5}`), a)
	if err != nil || up.Instances != 5 || up.Mem != 10 || *up.Cmd != *a.Cmd {
		t.Fatalf("update: %+v %v", up, err)
	}
	if a.Instances != 1 {
		t.Fatal("decoding an update changed the base app")
	}
}

func TestDecodeBadJSON(t *testing.T) {
	for _, body := range []string{`{"id": 5}`, `{"id":"a",`, `[]`, `{"cpus":"lots"}`} {
		_, err := Decode([]byte(body), Defaults())
		var bad *BadJSON
		if !errors.As(err, &bad) || bad.Message != "Invalid JSON" || len(bad.Details) == 0 {
			t.Errorf("%s: got %v, want a BadJSON", body, err)
		}
	}
	_, err := Decode([]byte(`{"cpus":"lots"}`), Defaults())
	if !strings.Contains(err.Error(), "/cpus") {
		t.Errorf("the path of a field of the wrong type is named: %v", err)
	}
}

// TestHealthCheckToMesos maps Marathon's checks to the agent-run ones,
// with Marathon's defaults and the instance's host port.
func TestHealthCheckToMesos(t *testing.T) {
	a := decode(t, `{"id":"/a","cmd":"x","portDefinitions":[{"port":0},{"port":0}],
		"healthChecks":[{"protocol":"HTTP","path":"/ok","portIndex":1,"maxConsecutiveFailures":0}]}`)
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	h := a.MesosHealthCheck([]uint64{31000, 31001})
	if h.GetType().String() != "HTTP" || h.HTTP.Port != 31001 || h.HTTP.GetPath() != "/ok" || h.HTTP.GetScheme() != "http" {
		t.Fatalf("HTTP check %+v", h)
	}
	if h.GetGracePeriodSeconds() != 300 || h.GetIntervalSeconds() != 60 || h.GetTimeoutSeconds() != 20 || h.GetDelaySeconds() != 15 {
		t.Fatalf("defaults %+v", h)
	}
	if h.GetConsecutiveFailures() != math.MaxUint32 {
		t.Fatalf("a legacy check's maxConsecutiveFailures 0 must never kill: %d", h.GetConsecutiveFailures())
	}
	c := decode(t, `{"id":"/a","cmd":"x","healthChecks":[{"protocol":"COMMAND","command":{"value":"true"},"maxConsecutiveFailures":0}]}`)
	h = c.MesosHealthCheck([]uint64{31000})
	if h.GetType().String() != "COMMAND" || h.Command.GetValue() != "true" || !h.Command.GetShell() || h.GetConsecutiveFailures() != 0 {
		t.Fatalf("COMMAND check %+v", h)
	}
	m := decode(t, `{"id":"/a","cmd":"x","healthChecks":[{"protocol":"MESOS_TCP","port":8123}]}`)
	if h = m.MesosHealthCheck([]uint64{31000}); h.GetType().String() != "TCP" || h.TCP.Port != 8123 {
		t.Fatalf("TCP check %+v", h)
	}
	if d := decode(t, `{"id":"/a","cmd":"x"}`); d.MesosHealthCheck(nil) != nil {
		t.Fatal("a check for an app without one")
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		body string
		path string // "" means valid
		want string
	}{
		{basic, "", ""},
		{`{"id":"/prod/web.v2/api","args":["/bin/sleep","10"]}`, "", ""},
		{`{"id":"/a","cmd":"x","constraints":[["hostname","UNIQUE"],["rack","GROUP_BY","3"],["rack","LIKE","r[12]"],["rack","UNLIKE","r3"],["hostname","MAX_PER","2"],["rack","IS","r1"],["rack","CLUSTER","r1"]]}`, "", ""},
		{`{"id":"/a","cmd":"x","cpus":0}`, "/cpus", "0.001"},
		{`{"id":"/a","cmd":"x","mem":-1}`, "/mem", "0.0 or more"},
		{`{"id":"/a","cmd":"x","instances":-2}`, "/instances", "greater than or equal"},
		{`{"id":"","cmd":"x"}`, "/id", "empty"},
		{`{"id":"/Bad_Name","cmd":"x"}`, "/id", "invalid characters"},
		{`{"id":"/a"}`, "/", "cmd"},
		{`{"id":"/a","cmd":"x","args":["y"]}`, "/", "not both"},
		{`{"id":"/a","cmd":"x","constraints":[["hostname","SOMETIMES"]]}`, "/constraints(0)", "must be one of"},
		{`{"id":"/a","cmd":"x","constraints":[["hostname","UNIQUE"],["rack","LIKE"]]}`, "/constraints(1)", "regular expression"},
		{`{"id":"/a","cmd":"x","constraints":[["rack","LIKE","("]]}`, "/constraints(0)", "not a regular expression"},
		{`{"id":"/a","cmd":"x","constraints":[["rack","MAX_PER","two"]]}`, "/constraints(0)", "MAX_PER"},
		{`{"id":"/a","cmd":"x","constraints":[["rack"]]}`, "/constraints(0)", "[field, operator]"},
		{`{"id":"/a","cmd":"x","backoffFactor":0.5}`, "/backoffFactor", "1.0 or more"},
		{`{"id":"/a","cmd":"x","killSelection":"RANDOM"}`, "/killSelection", "YOUNGEST_FIRST"},
		{`{"id":"/a","cmd":"x","upgradeStrategy":{"minimumHealthCapacity":1.5,"maximumOverCapacity":0}}`, "/upgradeStrategy/minimumHealthCapacity", "between 0 and 1"},
		{`{"id":"/a","cmd":"x","ports":[80],"portDefinitions":[{"port":0}]}`, "/", "both ports and port definitions"},
		{`{"id":"/a","cmd":"x","portDefinitions":[{"port":0,"name":"http"},{"port":0,"name":"http"}]}`, "/portDefinitions(1)/name", "unique"},
		{`{"id":"/a","cmd":"x","env":{"DB":{"secret":"db"}}}`, "/env/DB", "secrets"},
		{`{"id":"/a","container":{"type":"DOCKER","docker":{"image":"nginx"}}}`, "", ""},
		{`{"id":"/a","cmd":"x","unreachableStrategy":"disabled"}`, "", ""},
		{`{"id":"/a","cmd":"x","unreachableStrategy":{"inactiveAfterSeconds":60,"expungeAfterSeconds":30}}`, "/unreachableStrategy/expungeAfterSeconds", "at least inactiveAfterSeconds"},
		{`{"id":"/a","cmd":"x","unreachableStrategy":{"inactiveAfterSeconds":-1}}`, "/unreachableStrategy/inactiveAfterSeconds", "0 or more"},
		{`{"id":"/a","container":{"type":"DOCKER","docker":{"image":"nginx","network":"BRIDGE","portMappings":[{"containerPort":80,"hostPort":0}]}},"healthChecks":[{"protocol":"HTTP","portIndex":0}]}`, "", ""},
		{`{"id":"/a","cmd":"x","container":{"type":"MESOS"}}`, "", ""},
		{`{"id":"/a","container":{"type":"DOCKER","docker":{}}}`, "/container/docker/image", "needs docker.image"},
		{`{"id":"/a","container":{"type":"RKT","docker":{"image":"nginx"}}}`, "/container/type", "DOCKER or MESOS"},
		{`{"id":"/a","cmd":"x","container":{"type":"MESOS","docker":{"image":"nginx"},"volumes":[{"containerPath":"/d","hostPath":"/srv","mode":"RO"}]}}`, "", ""},
		{`{"id":"/a","cmd":"x","container":{"type":"MESOS","volumes":[{"containerPath":"/d","hostPath":"/srv","mode":"RO"}]}}`, "/container/volumes", "give docker.image"},
		{`{"id":"/a","container":{"type":"MESOS","docker":{"image":"nginx","network":"BRIDGE"}}}`, "/container/docker/network", "host's network"},
		{`{"id":"/a","container":{"type":"MESOS","docker":{"image":"nginx","parameters":[{"key":"user","value":"1"}]}}}`, "/container/docker", "for type DOCKER"},
		{`{"id":"/a","container":{"docker":{"image":"nginx","network":"HOST","portMappings":[{"containerPort":80}]}}}`, "/container/docker/portMappings", "BRIDGE"},
		{`{"id":"/a","container":{"docker":{"image":"nginx","network":"BRIDGE","portMappings":[{"containerPort":80,"hostPort":8080}]}}}`, "/container/docker/portMappings(0)/hostPort", "fixed host ports"},
		{`{"id":"/a","portDefinitions":[{"port":0}],"container":{"docker":{"image":"nginx","network":"BRIDGE"}}}`, "/portDefinitions", "portMappings"},
		{`{"id":"/a","container":{"docker":{"image":"nginx","network":"OVERLAY"}}}`, "/container/docker/network", "HOST or BRIDGE"},
		{`{"id":"/a","container":{"docker":{"image":"nginx","parameters":[{"key":"pid","value":"host"}]}}}`, "/container/docker/parameters(0)/key", "not supported"},
		{`{"id":"/a","container":{"docker":{"image":"nginx"},"volumes":[{"containerPath":"/data","hostPath":"/srv","mode":"RX"}]}}`, "/container/volumes(0)/mode", "RW or RO"},
		{`{"id":"/a","container":{"docker":{"image":"nginx"},"volumes":[{"containerPath":"/data","mode":"RO"}]}}`, "/container/volumes(0)/hostPath", "must not be empty"},
		{`{"id":"/a","container":{"docker":{"image":"nginx"},"volumes":[{"containerPath":"/data:1","hostPath":"/srv/a:b","mode":"RO"},{"containerPath":"cache","hostPath":"c:d","mode":"RW"}]}}`, "", ""},
		{`{"id":"/a","container":{"docker":{"image":"nginx"},"volumes":[{"containerPath":"../../etc","hostPath":"/srv","mode":"RO"}]}}`, "/container/volumes(0)/containerPath", "leads outside the sandbox"},
		{`{"id":"/a","container":{"docker":{"image":"nginx"},"volumes":[{"containerPath":"/data","hostPath":"x/../../y","mode":"RO"}]}}`, "/container/volumes(0)/hostPath", "leads outside the sandbox"},
		{`{"id":"/a","container":{"docker":{"image":"nginx"},"volumes":[{"containerPath":"/da\u0000ta","hostPath":"/srv","mode":"RO"}]}}`, "/container/volumes(0)/containerPath", "NUL byte"},
		{`{"id":"/a","container":{"type":"MESOS","docker":{"image":"nginx"},"volumes":[{"containerPath":"/data","hostPath":"/s\u0000rv","mode":"RO"}]}}`, "/container/volumes(0)/hostPath", "NUL byte"},
		{`{"id":"/a","container":{"docker":{"image":"nginx","network":"BRIDGE","portMappings":[{"containerPort":80}]}},"healthChecks":[{"protocol":"HTTP","portIndex":1}]}`, "/healthChecks(0)/portIndex", "has 1 port"},
		{`{"id":"/a","cmd":"x","healthChecks":[{"protocol":"HTTP"}]}`, "", ""},
		{`{"id":"/a","cmd":"x","healthChecks":[{"protocol":"GOPHER"}]}`, "/healthChecks(0)/protocol", "MESOS_HTTP"},
		{`{"id":"/a","cmd":"x","healthChecks":[{"protocol":"MESOS_HTTP","portIndex":2}]}`, "/healthChecks(0)/portIndex", "has 1 port"},
		{`{"id":"/a","cmd":"x","healthChecks":[{"protocol":"COMMAND"}]}`, "/healthChecks(0)/command", "command.value"},
		{`{"id":"/a","cmd":"x","healthChecks":[{"protocol":"MESOS_TCP","path":"/health"}]}`, "/healthChecks(0)/path", "only HTTP"},
		{`{"id":"/a","cmd":"x","healthChecks":[{"path":"health"}]}`, "/healthChecks(0)/path", "absolute"},
		{`{"id":"/a","cmd":"x","healthChecks":[{"intervalSeconds":0,"timeoutSeconds":-1}]}`, "/healthChecks(0)/timeoutSeconds", "more than 0"},
		{`{"id":"/a","cmd":"x","healthChecks":[{"protocol":"TCP"},{"protocol":"TCP"}]}`, "/healthChecks", "at most 1"},
		{`{"id":"/a","cmd":"x","requirePorts":true,"portDefinitions":[{"port":8080}]}`, "/requirePorts", "not supported yet"},
	}
	for _, c := range cases {
		a := decode(t, c.body)
		err := a.Validate()
		if c.path == "" {
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
			}
			continue
		}
		var inv *Invalid
		if !errors.As(err, &inv) || inv.Message != "Object is not valid" {
			t.Errorf("%s: got %v, want 422 at %s", c.body, err, c.path)
			continue
		}
		found := false
		for _, d := range inv.Details {
			if d.Path == c.path && strings.Contains(strings.Join(d.Errors, " "), c.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: details %+v, want path %s with %q", c.body, inv.Details, c.path, c.want)
		}
	}
}

func agentAt(host string, attrs map[string]string) Agent {
	return Agent{ID: host, Host: host, Attrs: attrs}
}

func TestConstraints(t *testing.T) {
	r1 := func(h string) Agent { return agentAt(h, map[string]string{"rack": "r1"}) }
	r2 := func(h string) Agent { return agentAt(h, map[string]string{"rack": "r2"}) }
	r3 := func(h string) Agent { return agentAt(h, map[string]string{"rack": "r3"}) }
	bare := agentAt("h9", nil)
	cases := []struct {
		name   string
		c      []string
		agent  Agent
		placed []Agent
		ok     bool
	}{
		{"unique free host", []string{"hostname", "UNIQUE"}, r1("h1"), []Agent{r1("h2")}, true},
		{"unique taken host", []string{"hostname", "UNIQUE"}, r1("h1"), []Agent{r1("h1")}, false},
		{"unique @hostname", []string{"@hostname", "UNIQUE"}, r1("h1"), []Agent{r2("h1")}, false},
		{"unique attribute", []string{"rack", "UNIQUE"}, r1("h1"), []Agent{r1("h2")}, false},
		{"unique missing attribute", []string{"rack", "UNIQUE"}, bare, nil, false},
		{"cluster value match", []string{"rack", "CLUSTER", "r1"}, r1("h1"), nil, true},
		{"cluster value mismatch", []string{"rack", "CLUSTER", "r1"}, r2("h1"), nil, false},
		{"cluster no value, first placement", []string{"rack", "CLUSTER"}, r2("h1"), nil, true},
		{"cluster no value, follows first", []string{"rack", "CLUSTER"}, r2("h1"), []Agent{r1("h2")}, false},
		{"cluster no value, same as first", []string{"rack", "CLUSTER"}, r1("h3"), []Agent{r1("h2")}, true},
		{"group_by least loaded", []string{"rack", "GROUP_BY"}, r2("h1"), []Agent{r1("h2")}, true},
		{"group_by more loaded", []string{"rack", "GROUP_BY"}, r1("h1"), []Agent{r1("h2"), r1("h3"), r2("h4")}, false},
		{"group_by even", []string{"rack", "GROUP_BY"}, r1("h1"), []Agent{r1("h2"), r2("h4")}, true},
		{"group_by waits for distinct values", []string{"rack", "GROUP_BY", "3"}, r1("h1"), []Agent{r1("h2"), r2("h4")}, false},
		{"group_by new value while waiting", []string{"rack", "GROUP_BY", "3"}, r3("h1"), []Agent{r1("h2"), r2("h4")}, true},
		{"like matches", []string{"rack", "LIKE", "r[12]"}, r2("h1"), nil, true},
		{"like whole value only", []string{"rack", "LIKE", "r"}, r2("h1"), nil, false},
		{"like missing attribute", []string{"rack", "LIKE", ".*"}, bare, nil, false},
		{"unlike matches", []string{"rack", "UNLIKE", "r[12]"}, r1("h1"), nil, false},
		{"unlike no match", []string{"rack", "UNLIKE", "r[12]"}, r3("h1"), nil, true},
		{"unlike missing attribute", []string{"rack", "UNLIKE", "r1"}, bare, nil, true},
		{"max_per under", []string{"rack", "MAX_PER", "2"}, r1("h1"), []Agent{r1("h2"), r2("h3")}, true},
		{"max_per at limit", []string{"rack", "MAX_PER", "2"}, r1("h1"), []Agent{r1("h2"), r1("h3")}, false},
		{"is text", []string{"rack", "IS", "r1"}, r1("h1"), nil, true},
		{"is text mismatch", []string{"rack", "IS", "r1"}, r2("h1"), nil, false},
		{"is scalar three decimals", []string{"gen", "IS", "2.0000"}, agentAt("h", map[string]string{"gen": "2"}), nil, true},
		{"is scalar differs", []string{"gen", "IS", "2.001"}, agentAt("h", map[string]string{"gen": "2"}), nil, false},
	}
	for _, c := range cases {
		k, err := ParseConstraint(c.c)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ok, why := k.Allows(c.agent, c.placed)
		if ok != c.ok {
			t.Errorf("%s: Allows = %v (%s), want %v", c.name, ok, why, c.ok)
		}
		if !ok && !strings.Contains(why, c.c[0]) {
			t.Errorf("%s: the reason %q does not name the field", c.name, why)
		}
	}
}

func offer(host string, res string, attrs ...mesos.Attribute) *mesos.Offer {
	o := &mesos.Offer{ID: mesos.OfferID{Value: "o-" + host}, AgentID: mesos.AgentID{Value: "a-" + host}, Hostname: host, Attributes: attrs}
	for _, part := range strings.Split(res, ";") {
		name, v, _ := strings.Cut(part, ":")
		if name == "ports" {
			var b, e uint64
			_, _ = fmt.Sscanf(v, "%d-%d", &b, &e)
			o.Resources = append(o.Resources, mesos.Resource{Name: name, Type: mesos.RANGES.Enum(),
				Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: b, End: e}}}})
			continue
		}
		var f float64
		_, _ = fmt.Sscan(v, &f)
		o.Resources = append(o.Resources, mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: f}})
	}
	return o
}

func TestMatch(t *testing.T) {
	app := decode(t, `{"id":"/web","cmd":"x","cpus":1,"mem":256,"instances":3,"portDefinitions":[{"port":0,"name":"http"},{"port":0}],"constraints":[["hostname","UNIQUE"]]}`)
	cons := app.ParsedConstraints()

	pool := offers.NewPool(offer("h1", "cpus:4;mem:1024;disk:100;ports:31000-31009"))
	fit, no := Match(&app, cons, pool, nil)
	if no != nil {
		t.Fatalf("a roomy offer is declined: %+v", no)
	}
	if len(fit.Ports) != 2 || fit.Ports[0] != 31000 || fit.Ports[1] != 31001 {
		t.Fatalf("ports %v", fit.Ports)
	}
	// The same offer again: the host is taken (UNIQUE); the pool is unchanged by a decline.
	before := pool.Sum("")["cpus"]
	_, no = Match(&app, cons, pool, []Agent{AgentOf(pool.Offer())})
	if no == nil || no.First() != UnfulfilledConstraint || !strings.Contains(strings.Join(no.Details, ";"), "hostname:UNIQUE") {
		t.Fatalf("UNIQUE host not declined with its reason: %+v", no)
	}
	if pool.Sum("")["cpus"] != before {
		t.Fatal("a declined match took resources")
	}
	// Short of everything: all reasons, in funnel order.
	small := offers.NewPool(offer("h2", "cpus:0.5;mem:100;disk:0;ports:31000-31000"))
	_, no = Match(&app, cons, small, []Agent{agentAt("h1", nil)})
	want := []Reason{InsufficientCpus, InsufficientMemory, InsufficientPorts}
	if no == nil || len(no.Reasons) != len(want) {
		t.Fatalf("reasons %+v, want %v", no, want)
	}
	for i := range want {
		if no.Reasons[i] != want[i] {
			t.Fatalf("reasons %v, want %v", no.Reasons, want)
		}
	}
	// A role the offer does not have.
	roled := app
	roled.AcceptedResourceRoles = []string{"prod"}
	_, no = Match(&roled, nil, offers.NewPool(offer("h3", "cpus:4;mem:1024;ports:31000-31009")), nil)
	if no == nil || no.First() != UnfulfilledRole {
		t.Fatalf("role: %+v", no)
	}
	// Attributes are compared as text.
	rack := mesos.Attribute{Name: "rack", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: "r1"}}
	app2 := decode(t, `{"id":"/w","cmd":"x","cpus":0.1,"mem":10,"constraints":[["rack","IS","r1"]]}`)
	if _, no := Match(&app2, app2.ParsedConstraints(), offers.NewPool(offer("h4", "cpus:1;mem:100;ports:1-10", rack)), nil); no != nil {
		t.Fatalf("rack IS r1: %+v", no)
	}
	if _, no := Match(&app2, app2.ParsedConstraints(), offers.NewPool(offer("h5", "cpus:1;mem:100;ports:1-10")), nil); no == nil {
		t.Fatal("an agent without the attribute fits IS")
	}
}

func TestKillOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	insts := []Instance{{"a", t0}, {"b", t0.Add(time.Minute)}, {"c", t0.Add(2 * time.Minute)}}
	if got := KillOrder(insts, YoungestFirst, 2); strings.Join(got, ",") != "c,b" {
		t.Errorf("youngest first: %v", got)
	}
	if got := KillOrder(insts, OldestFirst, 2); strings.Join(got, ",") != "a,b" {
		t.Errorf("oldest first: %v", got)
	}
	if got := KillOrder(insts, YoungestFirst, 9); len(got) != 3 {
		t.Errorf("more than there are: %v", got)
	}
}

func TestLaunchDelay(t *testing.T) {
	a := Defaults()
	a.BackoffSeconds, a.BackoffFactor, a.MaxLaunchDelaySeconds = 1, 2, 5
	for failures, want := range map[int]time.Duration{0: 0, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 50: 5 * time.Second} {
		if got := LaunchDelay(&a, failures); got != want {
			t.Errorf("after %d failures: %v, want %v", failures, got, want)
		}
	}
}

// TestRestart checks the worked examples of Marathon's deployment docs
// (n = 10, every instance healthy, none replaced yet).
func TestRestart(t *testing.T) {
	cases := []struct {
		mhc, moc    float64
		kill, start int
	}{
		{1, 1, 0, 10},
		{0.5, 0, 5, 5},
		{1, 0, 0, 1},
		{0, 0, 10, 10},
	}
	for _, c := range cases {
		kill, start := Restart(10, UpgradeStrategy{c.mhc, c.moc}, 10, 10, 0)
		if kill != c.kill || start != c.start {
			t.Errorf("(%g, %g): kill %d start %d, want %d %d", c.mhc, c.moc, kill, start, c.kill, c.start)
		}
	}
}

func TestFunnel(t *testing.T) {
	var s OfferStats
	now := time.Unix(0, 0)
	s.Used(now)
	s.Declined(UnusedOffer{Reasons: []Reason{UnfulfilledConstraint, InsufficientCpus}, Timestamp: now})
	s.Declined(UnusedOffer{Reasons: []Reason{InsufficientCpus}, Timestamp: now})
	got := map[Reason]RejectSummary{}
	for _, r := range s.SinceLaunchAttempt() {
		got[r.Reason] = r
	}
	if c := got[UnfulfilledConstraint]; c.Processed != 3 || c.Declined != 1 {
		t.Errorf("constraint step: %+v", c)
	}
	if c := got[InsufficientCpus]; c.Processed != 2 || c.Declined != 1 {
		t.Errorf("cpus step: %+v", c)
	}
	if c := got[InsufficientMemory]; c.Processed != 1 || c.Declined != 0 {
		t.Errorf("mem step: %+v", c)
	}
	if s.Processed != 3 || s.Unused != 2 || len(s.LastUnusedOffers()) != 2 {
		t.Errorf("counts %+v", s)
	}
}

// TestDecodeLeavesBaseAlone decodes an update onto a definition: the
// definition itself (kept as the previous version) must not change.
func TestDecodeLeavesBaseAlone(t *testing.T) {
	base := decode(t, `{"id":"/a","cmd":"sleep 1","taskKillGracePeriodSeconds":3,"dependencies":["/b"]}`)
	if _, err := Decode([]byte(`{"cmd":"sleep 2","taskKillGracePeriodSeconds":4,"dependencies":["/c"]}`), base); err != nil {
		t.Fatal(err)
	}
	if *base.Cmd != "sleep 1" || *base.TaskKillGracePeriod != 3 || !slices.Equal(base.Dependencies, []string{"/b"}) {
		t.Fatalf("the base changed: cmd %q, grace %g, dependencies %s", *base.Cmd, *base.TaskKillGracePeriod, base.Dependencies)
	}
}

// TestDependencies resolves relative dependencies against the app's
// group and finds cycles.
func TestDependencies(t *testing.T) {
	a := decode(t, `{"id":"/prod/web/frontend","cmd":"x","dependencies":["../db/pg","/cache","api"]}`)
	if want := []string{"/prod/db/pg", "/cache", "/prod/web/api"}; !slices.Equal(a.Dependencies, want) {
		t.Fatalf("dependencies %v, want %v", a.Dependencies, want)
	}
	self := decode(t, `{"id":"/a","cmd":"x","dependencies":["/a","/B"]}`)
	err := self.Validate()
	if err == nil || !strings.Contains(err.Error(), "/dependencies(0): an app cannot depend on itself") ||
		!strings.Contains(err.Error(), "/dependencies(1)") {
		t.Fatalf("Validate: %v", err)
	}
	if got := Under("/prod/db", []string{"/prod/db/pg", "/prod/dbx", "/prod/db", "/other"}); !slices.Equal(got, []string{"/prod/db", "/prod/db/pg"}) {
		t.Fatalf("Under: %v", got)
	}
	if c := DependencyCycle(map[string][]string{"/a": {"/b"}, "/b": {"/c"}, "/c": nil}); c != nil {
		t.Fatalf("cycle in a chain: %v", c)
	}
	c := DependencyCycle(map[string][]string{"/a": {"/b"}, "/b": {"/c"}, "/c": {"/a"}, "/d": {"/a"}})
	if !slices.Equal(c, []string{"/a", "/b", "/c", "/a"}) {
		t.Fatalf("cycle %v", c)
	}
}

// TestMesosContainer turns a BRIDGE app from Marathon's Docker docs into
// the ContainerInfo the agent's Docker containerizer runs: each port
// mapping gets its instance's host port, "udp,tcp" one mapping per
// protocol, container port 0 the host port; an app without an image has
// no ContainerInfo.
func TestMesosContainer(t *testing.T) {
	a := decode(t, `{"id":"/web","container":{"type":"DOCKER","docker":{"image":"nginx:1.25","network":"BRIDGE",
		"portMappings":[{"containerPort":80,"name":"http"},{"containerPort":53,"protocol":"udp,tcp"},{"containerPort":0}],
		"parameters":[{"key":"hostname","value":"web"}]},"volumes":[{"containerPath":"/data","hostPath":"/srv/data","mode":"RO"}]}}`)
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if a.PortCount() != 3 || !slices.Equal(a.PortNames(), []string{"http", "", ""}) {
		t.Fatalf("ports %d %q, want the three mappings", a.PortCount(), a.PortNames())
	}
	ci := a.MesosContainer([]uint64{31001, 31002, 31003})
	if ci.GetType() != mesos.ContainerInfo_DOCKER || ci.Docker.Image != "nginx:1.25" || ci.Docker.GetNetwork() != mesos.ContainerInfo_DockerInfo_BRIDGE {
		t.Fatalf("container %+v", ci)
	}
	var maps []string
	for _, m := range ci.Docker.PortMappings {
		maps = append(maps, fmt.Sprintf("%d->%d/%s", m.HostPort, m.ContainerPort, m.GetProtocol()))
	}
	if want := []string{"31001->80/tcp", "31002->53/udp", "31002->53/tcp", "31003->31003/tcp"}; !slices.Equal(maps, want) {
		t.Errorf("port mappings %q, want %q", maps, want)
	}
	if len(ci.Volumes) != 1 || ci.Volumes[0].GetHostPath() != "/srv/data" || ci.Volumes[0].GetMode() != mesos.RO {
		t.Errorf("volumes %+v", ci.Volumes)
	}
	if len(ci.Docker.Parameters) != 1 || ci.Docker.Parameters[0].Key != "hostname" {
		t.Errorf("parameters %+v", ci.Docker.Parameters)
	}
	if c := decode(t, `{"id":"/a","cmd":"x","container":{"type":"MESOS"}}`); c.MesosContainer(nil) != nil {
		t.Error("a MESOS container without an image became a ContainerInfo")
	}
	m := decode(t, `{"id":"/a","container":{"type":"MESOS","docker":{"image":"busybox"}}}`)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if ci := m.MesosContainer([]uint64{31000}); ci.GetType() != mesos.ContainerInfo_DOCKER || ci.Docker.Image != "busybox" ||
		ci.Docker.GetNetwork() != mesos.ContainerInfo_DockerInfo_HOST || len(ci.Docker.PortMappings) != 0 {
		t.Errorf("a MESOS container with an image: %+v, want the image on the host's network", ci)
	}
	// An update onto the app must not write through to it.
	up, err := Decode([]byte(`{"container":{"type":"DOCKER","docker":{"image":"nginx:1.26","portMappings":[{"containerPort":8080}]}}}`), a)
	if err != nil {
		t.Fatal(err)
	}
	if a.Container.Docker.Image != "nginx:1.25" || a.Container.Docker.PortMappings[0].ContainerPort != 80 || up.Container.Docker.Image != "nginx:1.26" {
		t.Errorf("the update wrote through: base %+v, update %+v", a.Container.Docker, up.Container.Docker)
	}
}

// TestUnreachable: what becomes of an instance away for a while, by the
// app's unreachableStrategy; "disabled" round-trips; another string is
// Marathon's 400.
func TestUnreachable(t *testing.T) {
	a := decode(t, `{"id":"/a","cmd":"x","unreachableStrategy":{"inactiveAfterSeconds":10,"expungeAfterSeconds":60}}`)
	for _, c := range []struct {
		away time.Duration
		want Unreachable
	}{{0, UnreachableWait}, {9 * time.Second, UnreachableWait}, {10 * time.Second, UnreachableInactive}, {60 * time.Second, UnreachableExpunge}} {
		if got := a.Unreachable(c.away); got != c.want {
			t.Errorf("away %v: %v, want %v", c.away, got, c.want)
		}
	}
	if b := decode(t, basic); b.Unreachable(0) != UnreachableExpunge {
		got := b.Unreachable(0)
		t.Errorf("Marathon's default (0, 0): %v, want expunged at once", got)
	}
	d := decode(t, `{"id":"/a","cmd":"x","unreachableStrategy":"disabled"}`)
	if got := d.Unreachable(1000 * time.Hour); got != UnreachableWait {
		t.Errorf("disabled: %v, want waited for", got)
	}
	if j, _ := json.Marshal(d); !strings.Contains(string(j), `"unreachableStrategy":"disabled"`) {
		t.Errorf("disabled encodes as %s", j)
	}
	var bj *BadJSON
	if _, err := Decode([]byte(`{"id":"/a","cmd":"x","unreachableStrategy":"never"}`), Defaults()); !errors.As(err, &bj) {
		t.Errorf("a strategy that is neither disabled nor an object: %v, want a 400", err)
	}
}
