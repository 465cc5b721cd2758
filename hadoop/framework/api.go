package framework

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/agora-cluster/agora/cluster/auth"
	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/job"
	"github.com/agora-cluster/agora/hadoop/jobtracker"
	"github.com/agora-cluster/agora/hadoop/umbilical"
)

// executorPath serves the executor binary (ServeExecutor).
const executorPath = "/executor/"

// executorURI is where the agents fetch the executor binary from, with
// the framework's fetch token (the fetcher sends no credentials).
//
// The token is not a secret: it is in the TaskTrackers' CommandInfo, which
// the master's and agents' state show to whoever may view this framework's
// executors. Nothing secret depends on it either: the binary is the public
// agora binary. It only keeps the download (tens of megabytes a request)
// to those who may view the executors, rather than to anyone who reaches
// the port; the umbilical's tokens, which are secret, travel elsewhere
// (umbilical.TaskToken).
func (f *Framework) executorURI() string {
	return f.advertise + executorPath + filepath.Base(f.cfg.ExecutorBinary) + "?token=" + f.fetchToken
}

// Handler serves the REST API (package client), the web page at /ui/ (the
// webui_url, /, leads there), the umbilical (package umbilical) and, with
// ServeExecutor, the executor binary.
func (f *Framework) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/jobs", f.handleSubmit)
	mux.HandleFunc("GET /api/v1/jobs", f.handleJobs)
	mux.HandleFunc("GET /api/v1/jobs/{id}", f.handleJob)
	mux.HandleFunc("POST /api/v1/jobs/{id}/kill", f.handleKill)
	mux.HandleFunc("GET /api/v1/attempts/{id}/log", f.handleLog)
	mux.HandleFunc("GET /api/v1/trackers", f.handleTrackers)
	mux.HandleFunc("GET /api/v1/info", f.handleInfo)
	mux.Handle("GET /ui/", uiHandler(f.changes))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("POST "+umbilical.CommitPath, f.handleCommit)
	mux.HandleFunc("GET "+umbilical.CompletionsPath, f.handleCompletions)
	mux.HandleFunc("POST "+umbilical.FetchFailedPath, f.handleFetchFailed)
	if f.cfg.ServeExecutor {
		bin := f.cfg.ExecutorBinary
		mux.HandleFunc("GET "+executorPath+filepath.Base(bin), func(w http.ResponseWriter, r *http.Request) {
			switch token := r.URL.Query().Get("token"); {
			case token == "":
				http.Error(w, "the executor binary is for this framework's agents: its URI carries a token (?token=), this request none", http.StatusUnauthorized)
			case subtle.ConstantTimeCompare([]byte(token), []byte(f.fetchToken)) != 1:
				http.Error(w, "the executor binary is for this framework's agents: the token is not the framework's", http.StatusForbidden)
			default:
				http.ServeFile(w, r, bin)
			}
		})
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind string, err error) {
	reply := client.ErrorReply{Error: err.Error(), Kind: kind}
	var re *job.RefusedError
	if errors.As(err, &re) {
		reply.Problems = re.Problems
	}
	writeJSON(w, code, reply)
}

// onLoop runs fn on the loop for an HTTP request; false means the
// scheduler is stopping (and an error was written).
func (f *Framework) onLoop(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context)) bool {
	if err := f.call(r.Context(), fn); err != nil {
		writeError(w, http.StatusServiceUnavailable, "internal", fmt.Errorf("the scheduler is not answering: %w", err))
		return false
	}
	return true
}

func (f *Framework) handleSubmit(w http.ResponseWriter, r *http.Request) {
	var req client.SubmitRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "usage", fmt.Errorf("%w: the request is not a submission: %v", job.ErrUsage, err))
		return
	}
	plan, err := Prepare(req)
	switch {
	case errors.Is(err, job.ErrRefused):
		writeError(w, http.StatusBadRequest, "refused", err)
		return
	case errors.Is(err, job.ErrUsage):
		writeError(w, http.StatusBadRequest, "usage", err)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "refused", &job.RefusedError{Problems: []string{err.Error()}})
		return
	}
	user, err := submitter(r, req, plan)
	if err != nil {
		writeError(w, http.StatusBadRequest, "refused", &job.RefusedError{Problems: []string{err.Error()}})
		return
	}
	if user != "" {
		plan.Spec.Conf.Set(conf.JobUser, user)
	}
	var info client.JobInfo
	var serr error
	if !f.onLoop(w, r, func(ctx context.Context) { info, serr = f.submit(ctx, plan, time.Now()) }) {
		return
	}
	if serr != nil {
		writeError(w, http.StatusInternalServerError, "internal", serr)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

// maxUser bounds a submitted user name (Linux allows 32 bytes; Kerberos
// principals are longer).
const maxUser = 256

// submitter is who submits a job, as Hadoop's user.name: the principal
// that authenticated the request, when the API asks for credentials (a
// claimed user cannot override it); else the request's user field; else
// the job's own user.name (-D user.name=...); else "" (unknown).
func submitter(r *http.Request, req client.SubmitRequest, plan job.Plan) (string, error) {
	if p, ok := auth.Principal(r.Context()); ok {
		return p, nil
	}
	user := req.User
	if user == "" {
		user = plan.Spec.Conf.Get(conf.JobUser)
	}
	if len(user) > maxUser || strings.IndexFunc(user, func(c rune) bool { return unicode.IsControl(c) || unicode.IsSpace(c) }) >= 0 {
		return "", fmt.Errorf("user %q: give a name of at most %d characters without spaces or control characters", user, maxUser)
	}
	return user, nil
}

func (f *Framework) handleJobs(w http.ResponseWriter, r *http.Request) {
	var out []client.JobInfo
	if !f.onLoop(w, r, func(context.Context) {
		for _, j := range f.jobs {
			out = append(out, f.jobInfo(j))
		}
	}) {
		return
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Done() != b.Done() {
			return !a.Done()
		}
		return a.Submitted.After(b.Submitted)
	})
	if out == nil {
		out = []client.JobInfo{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Framework) handleJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	tasks, _ := strconv.ParseBool(r.URL.Query().Get("tasks"))
	var d client.JobDetail
	found := false
	if !f.onLoop(w, r, func(context.Context) {
		j := f.jobs[id]
		if j == nil {
			return
		}
		found = true
		d.JobInfo = f.jobInfo(j)
		if tasks {
			if j.final != nil {
				d.Tasks = j.final.Tasks
			} else {
				d.Tasks = j.core.Tasks()
			}
		}
	}) {
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "not_found", fmt.Errorf("no job %s (see agora hadoop jobs)", id))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (f *Framework) handleKill(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var info client.JobInfo
	found := false
	if !f.onLoop(w, r, func(ctx context.Context) {
		j := f.jobs[id]
		if j == nil {
			return
		}
		found = true
		if j.final == nil {
			f.apply(ctx, j, j.core.Kill(time.Now(), "killed by request"))
			f.settle(ctx)
		}
		info = f.jobInfo(j)
	}) {
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "not_found", fmt.Errorf("no job %s (see agora hadoop jobs)", id))
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// handleLog serves an attempt's stderr, fetched from the tracker that ran
// it; when that tracker is gone, the attempt's diagnostics are all there
// is.
func (f *Framework) handleLog(w http.ResponseWriter, r *http.Request) {
	id, err := job.ParseAttemptID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "usage", err)
		return
	}
	var url, diag string
	found := false
	if !f.onLoop(w, r, func(context.Context) {
		j := f.jobs[id.Task.Job.String()]
		if j == nil {
			return
		}
		if a, ok := f.attempt(j, id); ok {
			found, diag = true, a.Diagnostics
		}
		if t := f.trackers[j.trackers[id]]; t != nil && t.state != trackerLost {
			url = t.url + umbilical.LogPath + id.String()
		}
	}) {
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "not_found", fmt.Errorf("no attempt %s", id))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if url != "" {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				io.Copy(w, resp.Body)
				return
			}
		}
	}
	if diag == "" {
		diag = "(no log: the task tracker that ran the attempt is gone, and the attempt left no diagnostics)"
	} else {
		diag = "(the task tracker that ran the attempt is gone; its diagnostics follow)\n" + diag
	}
	io.WriteString(w, diag+"\n")
}

// attempt finds an attempt of a running or finished job.
func (f *Framework) attempt(j *jobRun, id job.AttemptID) (jobtracker.Attempt, bool) {
	if j.core != nil {
		return j.core.Attempt(id)
	}
	if j.final != nil {
		for _, t := range j.final.Tasks {
			if t.ID == id.Task {
				for _, a := range t.Attempts {
					if a.ID == id {
						return *a, true
					}
				}
			}
		}
	}
	return jobtracker.Attempt{}, false
}

func (f *Framework) handleTrackers(w http.ResponseWriter, r *http.Request) {
	var out []client.TrackerInfo
	if !f.onLoop(w, r, func(context.Context) {
		for _, t := range f.trackers {
			out = append(out, t.infoForAPI())
		}
	}) {
		return
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Launched.Before(out[j].Launched) })
	if out == nil {
		out = []client.TrackerInfo{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Framework) handleInfo(w http.ResponseWriter, r *http.Request) {
	var info client.Info
	if !f.onLoop(w, r, func(context.Context) {
		info = client.Info{FrameworkID: f.state.FrameworkID, Subscribed: f.driver.Subscribed(), Incarnation: f.state.Incarnation,
			ActiveJobs: len(f.active), Trackers: f.liveTrackers()}
	}) {
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// umbilicalToken is the tracker token an umbilical request carries; a
// request without one is answered 401 and goes no further.
func umbilicalToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	token := umbilical.RequestToken(r)
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hadoop umbilical"`)
		http.Error(w, "the umbilical is for the framework's TaskTrackers: send the tracker's token (Authorization: Bearer, the umbilical_token of the attempt's task data)", http.StatusUnauthorized)
		return "", false
	}
	return token, true
}

// liveAttempt finds the job and attempt of an umbilical request's task,
// if the attempt is still running under this scheduler (else code is
// 410 Gone) and the caller holds the token of the tracker running it
// (else 403 Forbidden).
func (f *Framework) liveAttempt(task, token string) (j *jobRun, a job.AttemptID, code int) {
	a, inc, err := umbilical.ParseTaskID(task)
	if err != nil || inc != f.state.Incarnation {
		return nil, a, http.StatusGone
	}
	ref := f.tasks[task]
	if ref == nil || ref.job.core == nil || ref.job.final != nil {
		return nil, a, http.StatusGone
	}
	if ref.tracker == nil || subtle.ConstantTimeCompare([]byte(token), []byte(ref.tracker.token)) != 1 {
		return nil, a, http.StatusForbidden
	}
	return ref.job, a, 0
}

// refuseAttempt answers an umbilical request liveAttempt refused.
func refuseAttempt(w http.ResponseWriter, task string, code int) {
	if code == http.StatusForbidden {
		http.Error(w, "the token is not that of the TaskTracker running "+task, code)
		return
	}
	http.Error(w, "attempt "+task+" is not running", code)
}

func (f *Framework) handleCommit(w http.ResponseWriter, r *http.Request) {
	token, ok := umbilicalToken(w, r)
	if !ok {
		return
	}
	var req umbilical.CommitRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var commit bool
	refused := 0
	if !f.onLoop(w, r, func(context.Context) {
		var j *jobRun
		var a job.AttemptID
		if j, a, refused = f.liveAttempt(req.Task, token); refused == 0 {
			commit = j.core.RequestCommit(time.Now(), a)
			f.changes.Bump()
		}
	}) {
		return
	}
	if refused != 0 {
		refuseAttempt(w, req.Task, refused)
		return
	}
	writeJSON(w, http.StatusOK, umbilical.CommitReply{Commit: commit})
}

// completionWait bounds one long poll for map completion events.
const completionWait = 20 * time.Second

func (f *Framework) handleCompletions(w http.ResponseWriter, r *http.Request) {
	token, ok := umbilicalToken(w, r)
	if !ok {
		return
	}
	task := r.URL.Query().Get("task")
	from, err := strconv.Atoi(r.URL.Query().Get("from"))
	if err != nil || from < 0 {
		http.Error(w, "want task=<id>&from=<n>", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), completionWait)
	defer cancel()
	reply := make(chan []jobtracker.MapCompletion, 1)
	refused := 0
	if !f.onLoop(w, r, func(context.Context) {
		var j *jobRun
		var a job.AttemptID
		if j, a, refused = f.liveAttempt(task, token); refused != 0 {
			return
		}
		if at, ok := j.core.Attempt(a); !ok || at.State != jobtracker.AttemptRunning && at.State != jobtracker.AttemptCommitPending {
			refused = http.StatusGone
			return
		}
		j.waiters = append(j.waiters, &waiter{ctx: ctx, from: from, reply: reply})
		j.wake()
	}) {
		return
	}
	if refused != 0 {
		refuseAttempt(w, task, refused)
		return
	}
	select {
	case evs, ok := <-reply:
		if !ok {
			http.Error(w, "the job of "+task+" ended", http.StatusGone)
			return
		}
		writeJSON(w, http.StatusOK, evs)
	case <-ctx.Done():
		writeJSON(w, http.StatusOK, []jobtracker.MapCompletion{})
	}
}

func (f *Framework) handleFetchFailed(w http.ResponseWriter, r *http.Request) {
	token, ok := umbilicalToken(w, r)
	if !ok {
		return
	}
	var req umbilical.FetchFailure
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	refused := 0
	if !f.onLoop(w, r, func(ctx context.Context) {
		var j *jobRun
		var a job.AttemptID
		if j, a, refused = f.liveAttempt(req.Task, token); refused == 0 {
			f.log.Info("fetch failure", "reduce", a.String(), "map", req.Map)
			f.apply(ctx, j, j.core.FetchFailed(time.Now(), a, req.Map))
		}
	}) {
		return
	}
	if refused != 0 {
		refuseAttempt(w, req.Task, refused)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
