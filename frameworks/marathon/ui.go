package marathon

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// uiFiles are the web UI's pages: the apps and deployments, served at
// /ui/ as Marathon serves its own, from the /v2 API and its event stream.
//
//go:embed ui
var uiFiles embed.FS

// uiHandler serves the UI under /ui/.
func uiHandler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	return servicepage.Handler(sub, nil)
}
