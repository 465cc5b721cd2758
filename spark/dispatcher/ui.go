package dispatcher

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/frameworks/servicepage"
	"github.com/agora-cluster/agora/frameworks/state"
)

// uiFiles are the dispatcher's web page: the submitted drivers, where
// each runs, and the executors its application got, served at /ui/ from
// GET /api/v1/drivers.
//
//go:embed ui
var uiFiles embed.FS

// Application is what the executors' scheduler (spark/framework) records
// of a driver's application, for the page: the dispatcher itself knows
// only the driver's task.
type Application struct {
	ID    string `json:"appId"`
	Name  string `json:"appName"`
	State string `json:"state"`
	// DriverFrameworkID is the application's spark.mesos.driver.frameworkId:
	// the dispatcher's framework ID and the driver's task ID, which ties
	// the application to its driver.
	DriverFrameworkID string `json:"driverFrameworkId"`
	// UIURL is the Spark UI of the running driver, when the driver said
	// where it is.
	UIURL string `json:"uiUrl,omitempty"`
	// FrameworkID is the executors' framework (the scheduler's).
	FrameworkID string                `json:"frameworkId"`
	Executors   []ApplicationExecutor `json:"executors"`
}

// ApplicationExecutor is one executor task of an application.
type ApplicationExecutor struct {
	ID       string    `json:"id"`
	TaskID   string    `json:"taskId"`
	AgentID  string    `json:"agentId"`
	Hostname string    `json:"hostname"`
	CPUs     float64   `json:"cpus"`
	MemMB    float64   `json:"memMB"`
	State    string    `json:"state"`
	Launched time.Time `json:"launched,omitzero"`
}

// pageDriver is a driver as the page shows it: its submission without the
// request's properties and environment (which may hold secrets), and its
// application if the executors' scheduler knows it.
type pageDriver struct {
	ID          string    `json:"submissionId"`
	Name        string    `json:"name"`
	MainClass   string    `json:"mainClass"`
	AppResource string    `json:"appResource"`
	State       string    `json:"state"`
	Message     string    `json:"message,omitempty"`
	Submitted   time.Time `json:"submitted"`
	Launched    time.Time `json:"launched,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
	Retries     int       `json:"retries"`
	Supervise   bool      `json:"supervise"`
	CPUs        float64   `json:"cpus"`
	MemMB       float64   `json:"mem"`
	TaskID      string    `json:"taskId,omitempty"`
	FrameworkID string    `json:"frameworkId,omitempty"`
	AgentID     string    `json:"agentId,omitempty"`
	Hostname    string    `json:"hostname,omitempty"`
	TaskState   string    `json:"taskState,omitempty"`
	// KillRequested: the driver's task is being killed.
	KillRequested bool         `json:"killRequested,omitempty"`
	Application   *Application `json:"application,omitempty"`
}

// pageDrivers is the answer of GET /api/v1/drivers.
type pageDrivers struct {
	// Master is the master's web UI, for links to the drivers' sandboxes
	// ("" when not known).
	Master string `json:"master"`
	// Executors says whether the executors' scheduler's records are
	// there (without it each application runs in local[N] inside its
	// driver).
	Executors bool         `json:"executors"`
	Drivers   []pageDriver `json:"drivers"`
}

// uiHandler serves the page under /ui/.
func uiHandler(changes *servicepage.Changes) http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	return servicepage.Handler(sub, changes)
}

// applicationsEvery is how often watchApplications reads the
// applications.
const applicationsEvery = time.Second

// watchApplications bumps the page's change feed when the applications
// (Config.Applications, the executors' scheduler's records: nothing
// tells the dispatcher they changed) differ from the last read. It reads
// them, an in-process call, once a second until ctx ends.
func (d *Dispatcher) watchApplications(ctx context.Context) {
	if d.cfg.Applications == nil {
		return
	}
	t := time.NewTicker(applicationsEvery)
	defer t.Stop()
	var last []Application
	read := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		apps := d.cfg.Applications()
		if read && !reflect.DeepEqual(apps, last) {
			d.store.changes.Bump()
		}
		last, read = apps, true
	}
}

// serveUIDrivers answers GET /api/v1/drivers: every driver, newest first,
// with its application.
func (d *Dispatcher) serveUIDrivers(w http.ResponseWriter, _ *http.Request) {
	apps := map[string]*Application{}
	if d.cfg.Applications != nil {
		list := d.cfg.Applications()
		for i := range list {
			if id := list[i].DriverFrameworkID; id != "" {
				apps[id] = &list[i]
			}
		}
	}
	drivers := d.Drivers()
	out := pageDrivers{Master: d.masterUI(), Executors: d.cfg.Applications != nil, Drivers: make([]pageDriver, 0, len(drivers))}
	for i := len(drivers) - 1; i >= 0; i-- {
		dr := drivers[i]
		p := pageDriver{ID: dr.ID, Name: dr.Name, MainClass: dr.Request.MainClass, AppResource: dr.Request.AppResource,
			State: dr.State, Message: dr.Message, Submitted: dr.Submitted, Launched: dr.Launched, Finished: dr.Finished,
			Retries: dr.Retries, Supervise: dr.Supervise, CPUs: dr.CPUs, MemMB: dr.MemMB, TaskID: dr.TaskID,
			FrameworkID: dr.FrameworkID, AgentID: dr.AgentID, Hostname: dr.Hostname, TaskState: dr.TaskState,
			KillRequested: dr.KillRequested}
		if dr.TaskID != "" {
			p.Application = apps[dr.FrameworkID+"-"+dr.TaskID]
		}
		out.Drivers = append(out.Drivers, p)
	}
	send(w, http.StatusOK, out)
}

// pageKill is the answer of the page's kill: the dispatcher's message
// ("Killing running driver", "Removed driver while it's still pending").
type pageKill struct {
	ID      string `json:"submissionId"`
	Message string `json:"message"`
}

// serveUIKill answers POST /api/v1/drivers/{id}/kill, the page's kill:
// the dispatcher's kill, as Spark's POST /v1/submissions/kill/{id} does
// it, with its message. A kill the dispatcher does not make is told by
// what the driver is after it: 404 for a driver the dispatcher does not
// have (never had, or dropped as an ended one past
// spark.mesos.retainedDrivers), 409 for one that has ended, else 500 (a
// kill that could not be recorded), each as {"error": "..."}. Asking
// after the kill, not before, leaves no gap in which the driver could
// end or go.
func (d *Dispatcher) serveUIKill(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	resp := d.kill(ctx, id)
	if !resp.Success {
		dr, ok := d.Get(id)
		switch {
		case !ok:
			servicepage.ReplyError(w, http.StatusNotFound, fmt.Errorf("the dispatcher has no driver %s", id))
		case Terminal(dr.State):
			servicepage.ReplyError(w, http.StatusConflict, fmt.Errorf("driver %s has already ended (%s)", id, dr.State))
		default:
			servicepage.ReplyError(w, http.StatusInternalServerError, fmt.Errorf("driver %s: %s", id, resp.Message))
		}
		return
	}
	d.log.Info("driver killed from the page", "submission", id, "message", resp.Message)
	servicepage.Reply(w, http.StatusOK, pageKill{ID: id, Message: resp.Message})
}

// masterUI is the web UI of the master the dispatcher is subscribed with:
// the one it was given, or for a zk:// address the leader it found.
func (d *Dispatcher) masterUI() string {
	if len(d.cfg.Masters) > 0 && !strings.HasPrefix(d.cfg.Masters[0], "zk://") {
		if u, err := state.BaseURL(d.cfg.Masters[0]); err == nil {
			return u
		}
	}
	d.mu.Lock()
	sched := d.sched
	d.mu.Unlock()
	if sched == nil {
		return ""
	}
	m := sched.Master()
	if m == nil || m.GetAddress() == nil {
		return ""
	}
	host := m.GetAddress().GetHostname()
	if host == "" {
		host = m.GetAddress().GetIP()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(int(m.GetAddress().GetPort())))
}
