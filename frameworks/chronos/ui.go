package chronos

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// uiFiles are the web UI's page: the jobs with their next runs and the
// recent runs, served at /ui/ from the /v1/scheduler API.
//
//go:embed ui
var uiFiles embed.FS

// uiHandler serves the UI under /ui/.
func uiHandler(changes *servicepage.Changes) http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	return servicepage.Handler(sub, changes)
}
