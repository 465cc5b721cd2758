package api

import (
	"encoding/json"
	"net/http"
	"regexp"
)

var jsonpCallback = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$.]*$`)

// WriteJSON writes v as the answer of a legacy read-only endpoint: JSON, or
// JSONP when ?jsonp= names a callback (Mesos's endpoints support both).
// JSONP is a cross-origin read by design — any page can load the answer as
// a script — so it is served only to pages on an origin the operator listed
// (HTTPOptions.CORSAllowedOrigins); other requests for it get 403.
func WriteJSON(w http.ResponseWriter, r *http.Request, v any) {
	cb := r.URL.Query().Get("jsonp")
	if cb != "" && !jsonpAllowed(r) {
		http.Error(w, "JSONP is off: it would let any web page read this answer. "+
			"Read it same-origin, or list the page's origin in --cors_allowed_origins", http.StatusForbidden)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if cb != "" {
		if !jsonpCallback.MatchString(cb) {
			http.Error(w, "invalid jsonp callback name: use letters, digits, '_', '$' and '.'", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/javascript")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write([]byte(cb + "("))
		_, _ = w.Write(b)
		_, _ = w.Write([]byte(");"))
		return
	}
	w.Header().Set("Content-Type", MediaJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}
