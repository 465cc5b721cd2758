// Package servicepage serves a built-in service's web page at /ui/: the
// service's own files (index.html, ui.js) and the stylesheet and script
// helpers every service page shares, so that the pages look alike and
// the style and the helpers are kept in one place.
package servicepage

import (
	_ "embed"
	"io/fs"
	"net/http"
)

//go:embed style.css
var style []byte

//go:embed page.js
var script []byte

// Handler serves pages (the root of the service's page files) under /ui/,
// /ui/style.css and /ui/page.js (the pages' shared helpers) from this
// package, and at /ui/changes (ChangesPath) the feed of changes, which
// the pages follow to reload their API only when the service changed
// (changes nil: the feed answers 404 and the pages poll). The feed is
// under /ui/ so that whatever guards the page guards it too.
func Handler(pages fs.FS, changes *Changes) http.Handler {
	files := http.StripPrefix("/ui/", http.FileServer(http.FS(pages)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ui/style.css" {
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
			w.Write(style)
			return
		}
		if r.URL.Path == ChangesPath {
			changes.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/ui/page.js" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(script)
			return
		}
		files.ServeHTTP(w, r)
	})
}
