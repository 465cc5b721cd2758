package framework

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
)

// The API the cluster manager in the driver calls (plain JSON):
//
//	POST   /v1/applications              register {appId, appName, driverUrl, conf, uiUrl}
//	GET    /v1/applications              every application's status
//	GET    /v1/applications/{id}         one application's status and executors
//	POST   /v1/applications/{id}/executors  {total, hostToLocalTaskCount}:
//	                                     the executors Spark wants, and where its pending tasks' input is
//	POST   /v1/applications/{id}/kill    {executorIds}: kill these executors
//	DELETE /v1/applications/{id}         the application ended: kill its executors
//	GET    /v1/shuffleservices           the external shuffle services, by host
//
// Errors are {"message": "..."} with 400 (bad input), 404 (no such
// application or executor) or 409 (the application has ended); with
// Config.Auth, 401 without a driver's token or an operator's credentials
// and 403 for a token on another submission's application (auth.go).

type registerRequest struct {
	AppID     string            `json:"appId"`
	AppName   string            `json:"appName"`
	DriverURL string            `json:"driverUrl"`
	Conf      map[string]string `json:"conf"`
	// UIURL is the driver's Spark UI (SparkContext.uiWebUrl), if it
	// serves one.
	UIURL string `json:"uiUrl"`
}

// maxBody bounds a request's body.
const maxBody = 1 << 20

// Handler serves the API, behind Config.Auth when it is set.
func (s *Scheduler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/applications", func(w http.ResponseWriter, r *http.Request) {
		var req registerRequest
		if !decode(w, r, &req) {
			return
		}
		code, err := s.register(r.Context(), req)
		reply(w, code, err, map[string]string{"appId": req.AppID})
	})
	mux.HandleFunc("GET /v1/applications", func(w http.ResponseWriter, r *http.Request) {
		apps := s.Apps()
		if sub := submissionOf(r.Context()); sub != "" {
			// A driver sees its own submission's applications only.
			apps = slices.DeleteFunc(apps, func(a AppStatus) bool { return a.Submission != sub })
		}
		reply(w, http.StatusOK, nil, apps)
	})
	mux.HandleFunc("GET /v1/applications/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, ok := s.App(r.PathValue("id"))
		if !ok {
			reply(w, http.StatusNotFound, fmt.Errorf("no application %s", r.PathValue("id")), nil)
			return
		}
		reply(w, http.StatusOK, nil, st)
	})
	mux.HandleFunc("GET /v1/shuffleservices", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, nil, s.ShuffleServices())
	})
	mux.HandleFunc("DELETE /v1/applications/{id}", func(w http.ResponseWriter, r *http.Request) {
		code, err := s.end(r.Context(), r.PathValue("id"))
		reply(w, code, err, map[string]string{"appId": r.PathValue("id")})
	})
	mux.HandleFunc("POST /v1/applications/{id}/executors", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Total *int `json:"total"`
			// The pending tasks' preferred hosts and how many prefer each.
			HostToLocalTaskCount map[string]int `json:"hostToLocalTaskCount"`
		}
		if !decode(w, r, &req) {
			return
		}
		if req.Total == nil {
			reply(w, http.StatusBadRequest, errors.New("total is required"), nil)
			return
		}
		code, err := s.setLimit(r.PathValue("id"), *req.Total, req.HostToLocalTaskCount)
		reply(w, code, err, map[string]int{"total": *req.Total})
	})
	mux.HandleFunc("POST /v1/applications/{id}/kill", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ExecutorIDs []string `json:"executorIds"`
		}
		if !decode(w, r, &req) {
			return
		}
		code, err := s.killExecutors(r.Context(), r.PathValue("id"), req.ExecutorIDs)
		reply(w, code, err, map[string][]string{"executorIds": req.ExecutorIDs})
	})
	return s.guard(mux) // auth.go
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(b) > maxBody {
		err = fmt.Errorf("body larger than %d bytes", maxBody)
	}
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		reply(w, http.StatusBadRequest, fmt.Errorf("malformed request: %v", err), nil)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, code int, err error, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		v = map[string]string{"message": err.Error()}
	}
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // the cluster manager reads messages as they are
	_ = enc.Encode(v)
}
