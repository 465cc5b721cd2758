// Package webui serves agora's web UI: a single page of plain HTML, CSS and
// JavaScript embedded in the binary. The page reads the master's JSON
// endpoints on the same origin (/master/summary, /metrics/snapshot and,
// for the view open, a page of /master/tasks or /master/slaves,
// /master/frameworks?tasks=false, /master/roles, /metrics/history), so the
// master mounts Handler as the fallback for every path it does not serve.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// asset is one embedded file, read once.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes lists the only file kinds the UI ships.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// csp keeps the page to its own origin: even sandboxes are read through the
// master, which relays them from the agents (/agent/<id>/files/...).
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"

// Handler returns the web UI. It serves the page at "/" (and "/index.html"),
// its assets next to it, and the same files under "/ui/". Every other path
// is 404 so that API clients that mistype an endpoint get a clear answer
// rather than HTML. Routes inside the UI live in the URL fragment
// (#/tasks, #/task/<framework>/<task>), so they need no server support.
func Handler() http.Handler {
	files := map[string]*asset{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		sum := sha256.Sum256(body)
		files["/"+strings.TrimPrefix(p, "assets/")] = &asset{
			body:        body,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		// The files are compiled in; failing to read them is a build defect.
		panic("webui: reading embedded assets: " + err.Error())
	}
	files["/"] = files["/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/ui" {
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
			return
		}
		if rest, ok := strings.CutPrefix(p, "/ui/"); ok {
			p = "/" + rest
		}
		a := files[p]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		// Revalidate on every load so an upgraded binary's UI shows at once.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", csp)
		http.ServeContent(w, r, p, time.Time{}, bytes.NewReader(a.body))
	})
}
