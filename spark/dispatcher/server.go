package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// maxRequest bounds a request body: a create request is a few kilobytes.
const maxRequest = 1 << 20

// Handler serves Spark's REST submission protocol under /v1/submissions/
// (create, status, kill), Spark's ErrorResponse for every other path, the
// dispatcher's own listing at /drivers and /drivers/ID (JSON, for
// `agora spark`), and its web page at /ui/ with the page's API at
// /api/v1/drivers and the page's kill at POST /api/v1/drivers/{id}/kill,
// those wrapped by Config.WrapPage. / stays Spark's ErrorResponse, as
// Spark's REST server answers there.
//
// Whoever wraps the whole handler in Basic credentials (Config.WrapHTTP)
// makes a browser that has them send them with any form posted to this
// port from any site. So a change through Spark's protocol or the
// executors' API that a browser marks as sent by a page of another origin
// is refused (sameOriginChange), and a create needs a JSON Content-Type,
// which a form cannot send; spark-submit, `agora spark` and the drivers'
// cluster manager send no Origin and a JSON body.
func (d *Dispatcher) Handler() http.Handler {
	mux := http.NewServeMux()
	protocol := func(h http.HandlerFunc) http.Handler {
		return sameOriginChange(h, func(w http.ResponseWriter, err error) {
			send(w, http.StatusForbidden, errorResponse(err.Error()))
		})
	}
	mux.Handle("/v1/submissions/create", protocol(d.serveCreate))
	mux.Handle("/v1/submissions/create/", protocol(d.serveCreate))
	mux.Handle("/v1/submissions/status", protocol(d.serveStatus))
	mux.Handle("/v1/submissions/status/", protocol(d.serveStatus))
	mux.Handle("/v1/submissions/kill", protocol(d.serveKill))
	mux.Handle("/v1/submissions/kill/", protocol(d.serveKill))
	mux.HandleFunc("GET /drivers", d.serveDrivers)
	mux.HandleFunc("GET /drivers/{id}", d.serveDriver)
	if d.cfg.Extra != nil {
		// The executors' API answers {"message": ...}, as its own
		// refusals do.
		extra := sameOriginChange(d.cfg.Extra, func(w http.ResponseWriter, err error) {
			servicepage.Reply(w, http.StatusForbidden, map[string]string{"message": err.Error()})
		})
		mux.Handle("/v1/applications", extra)
		mux.Handle("/v1/applications/", extra)
	}
	page := d.cfg.WrapPage
	if page == nil {
		page = func(h http.Handler) http.Handler { return h }
	}
	mux.Handle("GET /ui/", page(uiHandler(d.store.changes)))
	mux.Handle("GET /api/v1/drivers", page(http.HandlerFunc(d.serveUIDrivers)))
	mux.Handle("POST /api/v1/drivers/{id}/kill", page(servicepage.ChangeGuard(http.HandlerFunc(d.serveUIKill), "the drivers page")))
	mux.HandleFunc("/", serveError)
	return mux
}

// sameOriginChange refuses, through refuse, a request other than GET or
// HEAD that a browser marks as sent by a page of another origin (Origin,
// Sec-Fetch-Site: api.SameOrigin) before h runs. Clients that are not
// browsers send neither header and are let through.
func sameOriginChange(h http.Handler, refuse func(http.ResponseWriter, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if herr := api.SameOrigin(r); herr != nil {
				refuse(w, herr)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func send(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// methodOnly refuses another method than m as a servlet without it does.
func methodOnly(w http.ResponseWriter, r *http.Request, m string) bool {
	if r.Method == m {
		return true
	}
	w.Header().Set("Allow", m)
	send(w, http.StatusMethodNotAllowed, errorResponse("HTTP method "+r.Method+" is not supported by this URL"))
	return false
}

func (d *Dispatcher) serveCreate(w http.ResponseWriter, r *http.Request) {
	if !methodOnly(w, r, http.MethodPost) {
		return
	}
	// spark-submit and `agora spark submit` send application/json; a
	// form (text/plain can carry a body that parses as JSON) cannot.
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		got := "no Content-Type"
		if ct != "" {
			got = fmt.Sprintf("Content-Type %q", ct)
		}
		send(w, http.StatusUnsupportedMediaType, errorResponse("Refusing a create request with "+got+
			": send it with Content-Type: application/json, as spark-submit does (a form, which a page of another site can post, cannot)"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err != nil {
		send(w, http.StatusBadRequest, errorResponse("Malformed request: could not read the request: "+err.Error()))
		return
	}
	req, unknown, err := ParseCreate(body)
	var ut *unexpectedType
	switch {
	case errors.As(err, &ut):
		send(w, http.StatusBadRequest, errorResponse(ut.Error()))
		return
	case err != nil:
		e := errorResponse("Malformed request: " + err.Error())
		e.UnknownFields = unknown
		send(w, http.StatusBadRequest, e)
		return
	}
	code, resp := d.submit(req)
	resp.UnknownFields = unknown
	send(w, code, resp)
}

// isJSON says whether the Content-Type ct is application/json (with or
// without parameters such as charset).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// submissionID is the path's segment after prefix ("" if none).
func submissionID(r *http.Request, prefix string) string {
	id, _, _ := strings.Cut(strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/"), "/")
	return id
}

func (d *Dispatcher) serveStatus(w http.ResponseWriter, r *http.Request) {
	if !methodOnly(w, r, http.MethodGet) {
		return
	}
	id := submissionID(r, "/v1/submissions/status")
	if id == "" {
		send(w, http.StatusBadRequest, errorResponse("Submission ID is missing in status request."))
		return
	}
	send(w, http.StatusOK, d.status(id))
}

func (d *Dispatcher) serveKill(w http.ResponseWriter, r *http.Request) {
	if !methodOnly(w, r, http.MethodPost) {
		return
	}
	id := submissionID(r, "/v1/submissions/kill")
	if id == "" {
		send(w, http.StatusBadRequest, errorResponse("Submission ID is missing in kill request."))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	send(w, http.StatusOK, d.kill(ctx, id))
}

// serveError answers every other path as Spark's ErrorServlet: what is
// missing from the path, or, for another protocol version, 468 with the
// version this server speaks.
func serveError(w http.ResponseWriter, r *http.Request) {
	var parts []string
	for _, p := range strings.Split(r.URL.Path, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	code, mismatch := http.StatusBadRequest, false
	var msg string
	switch {
	case len(parts) == 0:
		msg = "Missing protocol version."
	case parts[0] == ProtocolVersion && len(parts) == 1:
		msg = "Missing the /submissions prefix."
	case parts[0] == ProtocolVersion && parts[1] == "submissions":
		msg = "Missing an action: please specify one of /create, /kill, or /status."
	case parts[0] == ProtocolVersion:
		msg = "Malformed path " + r.URL.Path + "."
	default:
		msg = "Unknown protocol version '" + parts[0] + "'."
		code, mismatch = StatusUnknownProtocolVersion, true
	}
	e := errorResponse(msg + " Please submit requests through http://[host]:[port]/" + ProtocolVersion + "/submissions/...")
	if mismatch {
		e.HighestProtocolVersion = ProtocolVersion
	}
	send(w, code, e)
}

func (d *Dispatcher) serveDrivers(w http.ResponseWriter, _ *http.Request) {
	send(w, http.StatusOK, d.Drivers())
}

func (d *Dispatcher) serveDriver(w http.ResponseWriter, r *http.Request) {
	dr, ok := d.Get(r.PathValue("id"))
	if !ok {
		send(w, http.StatusNotFound, errorResponse("Cannot find driver "+r.PathValue("id")))
		return
	}
	send(w, http.StatusOK, dr)
}
