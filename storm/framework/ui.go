package framework

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// The topologies page: served at /ui/ (/ leads there) from a small API,
//
//	GET  /api/v1/topologies            the topologies, with the master's UI and whether kill is offered
//	GET  /api/v1/topologies/{id}       one topology: its workers and components
//	POST /api/v1/topologies/{id}/kill  kill it (when the Topologies can)
//
// over Topologies: Nimbus's (`agora storm scheduler`) or the cluster's
// native ones (a native topology's control port). Each topology says
// whether this viewer may kill it (can_kill: the Topologies' MayKill for
// the request, whose context holds the principal of an authenticated
// page), and the page offers kill only there. Errors are
// {"error": "..."}: 404 for an unknown topology, 405 when kill is not
// offered, 403 for a kill MayKill refuses or a change a page of another
// origin could have sent (ChangeGuard), 409 for a kill whose topology
// changed since the page listed it (ErrChanged), 502 when the source
// does not answer.

//go:embed ui
var uiFiles embed.FS

// TopologySummary is one topology of the list.
type TopologySummary struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Runtime is "storm" (Nimbus's) or "native".
	Runtime string `json:"runtime"`
	// Status is Storm's ACTIVE, INACTIVE, REBALANCING or KILLED, or
	// UNKNOWN when the topology does not say.
	Status       string `json:"status"`
	UptimeSecs   int    `json:"uptime_secs"`
	NumWorkers   int    `json:"num_workers"`
	NumExecutors int    `json:"num_executors"`
	NumTasks     int    `json:"num_tasks"`
	// CanKill says whether the page's viewer may kill it (set by the
	// handler from Topologies.CanKill and MayKill).
	CanKill bool `json:"can_kill"`
}

// TopologyWorker is one worker: where it runs, its components' executors
// in it, and the task whose sandbox holds its files (a native worker's
// own task; a Storm worker's supervisor's).
type TopologyWorker struct {
	Host        string         `json:"host"`
	Port        int            `json:"port"`
	UptimeSecs  int            `json:"uptime_secs"`
	Executors   map[string]int `json:"executors"`
	FrameworkID string         `json:"framework_id,omitempty"`
	TaskID      string         `json:"task_id,omitempty"`
	AgentID     string         `json:"agent_id,omitempty"`
	// Error is why its counts are missing, if they are.
	Error string `json:"error,omitempty"`
}

// TopologyComponent is one spout or bolt with its all-time counts.
type TopologyComponent struct {
	ID        string `json:"id"`
	Type      string `json:"type"` // spout or bolt ("": not known yet)
	Executors int    `json:"executors"`
	Emitted   int64  `json:"emitted"`
	Acked     int64  `json:"acked"`
	Failed    int64  `json:"failed"`
}

// Topology is one topology's page.
type Topology struct {
	TopologySummary
	Workers    []TopologyWorker    `json:"workers"`
	Components []TopologyComponent `json:"components"`
}

// ErrNoTopology is the error of a Topologies asked for a topology it does
// not have.
var ErrNoTopology = errors.New("no such topology")

// ErrChanged is the error of a kill refused because the topology is not
// the one the page showed (its ID no longer names the topology the kill
// would reach); the page answers 409.
var ErrChanged = errors.New("the topology changed")

// Topologies are where the page's API reads from.
type Topologies interface {
	List(ctx context.Context) ([]TopologySummary, error)
	Get(ctx context.Context, id string) (*Topology, error)
	// Kill kills the topology; nil when the source cannot.
	Kill(ctx context.Context, id string) error
	// CanKill says whether Kill is offered at all.
	CanKill() bool
	// MayKill says why the request's viewer may not kill topology id
	// (nil: they may): ctx is the request's, with the principal
	// (auth.Principal) when the page asks for credentials. It is asked
	// for every topology listed, so it must not call out.
	MayKill(ctx context.Context, id string) error
}

// UIConfig is what the page is served from.
type UIConfig struct {
	Topologies Topologies
	// Master is the master's web UI (http://HOST:PORT), for the links to
	// the workers' sandboxes; "" leaves them out.
	Master func() string
	Logger *slog.Logger
	// Timeout bounds one call to the Topologies (default 20 s).
	Timeout time.Duration
	// Changes is the page's change feed (/ui/changes): a
	// SharedTopologies' Changes, bumped when its reads see a change, or
	// one the source's owner bumps (the native runtime's page: from the
	// master's operator events). Nil: the page polls.
	Changes *servicepage.Changes
}

// topologyList is the answer of GET /api/v1/topologies.
type topologyList struct {
	Master     string            `json:"master"`
	Kill       bool              `json:"kill"`
	Topologies []TopologySummary `json:"topologies"`
}

// topologyPage is the answer of GET /api/v1/topologies/{id}.
type topologyPage struct {
	Master   string    `json:"master"`
	Kill     bool      `json:"kill"`
	Topology *Topology `json:"topology"`
}

// UIHandler serves the page, its API and / (a redirect to the page).
func UIHandler(cfg UIConfig) http.Handler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	master := func() string {
		if cfg.Master == nil {
			return ""
		}
		return cfg.Master()
	}
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	canKill := func(ctx context.Context, id string) bool {
		return cfg.Topologies.CanKill() && cfg.Topologies.MayKill(ctx, id) == nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ui/", servicepage.Handler(sub, cfg.Changes))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("GET /api/v1/topologies", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.Timeout)
		defer cancel()
		ts, err := cfg.Topologies.List(ctx)
		if err != nil {
			uiError(w, http.StatusBadGateway, err)
			return
		}
		if ts == nil {
			ts = []TopologySummary{}
		}
		for i := range ts {
			ts[i].CanKill = canKill(r.Context(), ts[i].ID)
		}
		uiReply(w, http.StatusOK, topologyList{Master: master(), Kill: cfg.Topologies.CanKill(), Topologies: ts})
	})
	mux.HandleFunc("GET /api/v1/topologies/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.Timeout)
		defer cancel()
		t, err := cfg.Topologies.Get(ctx, r.PathValue("id"))
		if err != nil {
			uiError(w, statusOf(err), err)
			return
		}
		t.CanKill = canKill(r.Context(), t.ID)
		uiReply(w, http.StatusOK, topologyPage{Master: master(), Kill: cfg.Topologies.CanKill(), Topology: t})
	})
	mux.Handle("POST /api/v1/topologies/{id}/kill", ChangeGuard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !cfg.Topologies.CanKill() {
			uiError(w, http.StatusMethodNotAllowed, errors.New("this service does not kill topologies"))
			return
		}
		if err := cfg.Topologies.MayKill(r.Context(), id); err != nil {
			uiError(w, http.StatusForbidden, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), cfg.Timeout)
		defer cancel()
		if err := cfg.Topologies.Kill(ctx, id); err != nil {
			uiError(w, statusOf(err), err)
			return
		}
		cfg.Logger.Info("topology killed from the page", "topology", id)
		uiReply(w, http.StatusAccepted, map[string]string{"killed": id})
	})))
	return mux
}

// RequestedBy is the header the page sends with every change it asks for
// (X-Requested-By: agora); a JSON body does as well.
const RequestedBy = servicepage.RequestedBy

// ChangeGuard is servicepage's CSRF guard of a state-changing endpoint:
// a change needs RequestedBy or a JSON body, and one a browser says came
// from another origin is refused, with 403 naming why, before h runs.
func ChangeGuard(h http.Handler) http.Handler {
	return servicepage.ChangeGuard(h, "the topologies page and the agora CLI")
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNoTopology):
		return http.StatusNotFound
	case errors.Is(err, ErrChanged):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

func uiReply(w http.ResponseWriter, code int, v any) { servicepage.Reply(w, code, v) }

func uiError(w http.ResponseWriter, code int, err error) { servicepage.ReplyError(w, code, err) }
