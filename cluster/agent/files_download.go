package agent

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
)

// serveDownload is /files/download?path=FILE: the file itself, as an
// attachment, with Range support; the same confinement as /files/read.
func (a *Agent) serveDownload(w http.ResponseWriter, r *http.Request) {
	f, clean, info, err := a.openSandboxPath(r) // files.go
	if err != nil {
		writeFilesErr(w, err)
		return
	}
	defer f.Close()
	if info.IsDir() {
		writeFilesErr(w, filesErr(http.StatusBadRequest, "path %q is a directory; use /files/browse", r.URL.Query().Get("path")))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	// A task writes what it likes: no page may run it as a script.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(filepath.Base(clean)))
	http.ServeContent(w, r, filepath.Base(clean), info.ModTime(), f)
}

// serveFilesDebug is /files/debug: the directories /files serves, as a map
// of the path clients use to the path on this machine (the same here: the
// agent serves its sandboxes under their real paths).
func (a *Agent) serveFilesDebug(w http.ResponseWriter, r *http.Request) {
	out := map[string]string{}
	a.mu.Lock()
	for _, t := range a.tasks {
		if t.sandbox != "" {
			out[t.sandbox] = t.sandbox
		}
	}
	a.mu.Unlock()
	for _, dir := range a.activeExecutorDirs() {
		if dir != "" && strings.HasPrefix(dir, filepath.Join(a.workDir, "slaves")+"/") {
			out[dir] = dir
		}
	}
	for dir := range out {
		if a.authorizeSandbox(r, dir) != nil { // files_authz.go: list only what may be read
			delete(out, dir)
		}
	}
	writeJSON(w, r, out)
}
