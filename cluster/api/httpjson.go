package api

import (
	"encoding/json"
	"net/http"
	"regexp"
)

var jsonpCallback = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$.]*$`)

// WriteJSON writes v as the answer of a legacy read-only endpoint: JSON, or
// JSONP when ?jsonp= names a callback (Mesos's endpoints support both).
// Read-only answers may be read cross-origin (the web UI reads agents).
func WriteJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if cb := r.URL.Query().Get("jsonp"); cb != "" {
		if !jsonpCallback.MatchString(cb) {
			http.Error(w, "invalid jsonp callback name: use letters, digits, '_', '$' and '.'", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write([]byte(cb + "("))
		_, _ = w.Write(b)
		_, _ = w.Write([]byte(");"))
		return
	}
	w.Header().Set("Content-Type", MediaJSON)
	_, _ = w.Write(b)
}
