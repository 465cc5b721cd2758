package framework

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// uiFiles are the framework's web page: its jobs with their map and
// reduce progress, a job's counters and attempts, and the TaskTrackers,
// served at /ui/ from the /api/v1 API, as the JobTracker served its own.
//
//go:embed ui
var uiFiles embed.FS

// uiHandler serves the page under /ui/.
func uiHandler(changes *servicepage.Changes) http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	return servicepage.Handler(sub, changes)
}
