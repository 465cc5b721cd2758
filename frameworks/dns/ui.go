package dns

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/agora-cluster/agora/frameworks/servicepage"
)

// uiFiles are the web UI's page: every task record the resolver serves,
// from /v1/enumerate, at /ui/ on the HTTP API's port.
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
