package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/agora-cluster/agora/cluster/api"
)

// httpFlags are the browser- and profiling-facing flags the master and the
// agent share (api.HTTPOptions).
type httpFlags struct {
	corsOrigins string
	pprof       bool
}

func (f *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.corsOrigins, "cors_allowed_origins", "", "comma-separated origins (e.g. https://dash.example.com) whose web pages may read\n"+
		"the JSON endpoints and sandbox files cross-origin, by CORS or JSONP (default: none, same-origin only)")
	fs.BoolVar(&f.pprof, "enable_pprof", false, "serve Go's runtime profiles under /debug/pprof/ (off by default: they expose the process)")
}

func (f *httpFlags) options() (api.HTTPOptions, error) {
	origins, err := api.ParseOrigins(f.corsOrigins)
	if err != nil {
		return api.HTTPOptions{}, fmt.Errorf("--cors_allowed_origins: %w", err)
	}
	return api.HTTPOptions{CORSAllowedOrigins: origins, EnablePprof: f.pprof}, nil
}

// flags are the values reported by /flags and /state.
func (f *httpFlags) flags(m map[string]string) {
	m["cors_allowed_origins"] = f.corsOrigins
	m["enable_pprof"] = strconv.FormatBool(f.pprof)
}
