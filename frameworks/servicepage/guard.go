package servicepage

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	"github.com/agora-cluster/agora/cluster/api"
)

// RequestedBy is the header a page sends with every change it asks for
// (X-Requested-By: agora); a JSON body does as well.
const RequestedBy = "X-Requested-By"

// ChangeGuard is the CSRF guard of a page's state-changing endpoint. A
// page on any origin can make a browser post a form there, and the
// browser resends the operator's Basic credentials with it; it cannot,
// without a CORS preflight the services never grant, set a custom header
// or a JSON content type. So a change needs one of those (a page sends
// RequestedBy, a CLI a JSON body), and one a browser says came from
// another origin (Origin, Sec-Fetch-Site) is refused; both with 403 and
// {"error": "..."} naming why, before h runs. senders names who sends
// the header, for the message ("the drivers page").
func ChangeGuard(h http.Handler, senders string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if herr := api.SameOrigin(r); herr != nil {
			ReplyError(w, herr.Code, herr)
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" && r.Header.Get(RequestedBy) == "" {
			ReplyError(w, http.StatusForbidden, fmt.Errorf("refusing a change without a %s header or a JSON body (Content-Type: application/json): a page of another site could have sent it; %s send one", RequestedBy, senders))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Reply answers v as JSON with code.
func Reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// ReplyError answers {"error": err} with code, the error a page's
// getJSON shows.
func ReplyError(w http.ResponseWriter, code int, err error) {
	Reply(w, code, map[string]string{"error": err.Error()})
}
