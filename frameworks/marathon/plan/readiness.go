package plan

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// ReadinessCheck is an app's readinessChecks entry, in Marathon's JSON:
// an HTTP endpoint of each new instance that the framework polls during a
// deployment. A new instance counts towards the deployment (and lets an
// old one go) only once the endpoint answers one of
// httpStatusCodesForReady; after that it is not polled again.
type ReadinessCheck struct {
	Name                    string  `json:"name"`
	Protocol                string  `json:"protocol"`
	Path                    string  `json:"path"`
	PortName                string  `json:"portName"`
	IntervalSeconds         float64 `json:"intervalSeconds"`
	TimeoutSeconds          float64 `json:"timeoutSeconds"`
	HTTPStatusCodesForReady []int   `json:"httpStatusCodesForReady"`
	PreserveLastResponse    bool    `json:"preserveLastResponse"`
}

// UnmarshalJSON decodes a check onto Marathon's defaults.
func (r *ReadinessCheck) UnmarshalJSON(b []byte) error {
	type plain ReadinessCheck
	p := plain{Name: "readinessCheck", Protocol: ProtoHTTP, Path: "/", PortName: "http-api",
		IntervalSeconds: 30, TimeoutSeconds: 10, HTTPStatusCodesForReady: []int{200}}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = ReadinessCheck(p)
	return nil
}

// Ready says whether an answer's status code means ready.
func (r *ReadinessCheck) Ready(status int) bool {
	return slices.Contains(r.HTTPStatusCodesForReady, status)
}

// PortIndex is the index of the check's port among the app's ports, or
// -1 when no port has its name.
func (r *ReadinessCheck) PortIndex(a *App) int {
	return slices.Index(a.PortNames(), r.PortName)
}

// URL is the check's address on an instance at host with hostPorts, or
// "" when the instance has no such port.
func (r *ReadinessCheck) URL(a *App, host string, hostPorts []uint64) string {
	i := r.PortIndex(a)
	if i < 0 || i >= len(hostPorts) {
		return ""
	}
	return fmt.Sprintf("%s://%s:%d%s", strings.ToLower(r.Protocol), host, hostPorts[i], r.Path)
}

func (r *ReadinessCheck) validate(i int, a *App, bad func(path, format string, args ...any)) {
	path := fmt.Sprintf("/readinessChecks(%d)", i)
	if r.Name == "" {
		bad(path+"/name", "must not be empty")
	}
	if r.Protocol != ProtoHTTP && r.Protocol != ProtoHTTPS {
		bad(path+"/protocol", "got %q, expected one of [HTTP, HTTPS]", r.Protocol)
	}
	if !strings.HasPrefix(r.Path, "/") {
		bad(path+"/path", "got %q, expected an absolute path (starting with /)", r.Path)
	}
	if r.PortIndex(a) < 0 {
		bad(path+"/portName", "no port named %q in portDefinitions (names: %q)", r.PortName, a.PortNames())
	}
	if r.IntervalSeconds <= 0 {
		bad(path+"/intervalSeconds", "got %g, expected more than 0", r.IntervalSeconds)
	}
	switch {
	case r.TimeoutSeconds <= 0:
		bad(path+"/timeoutSeconds", "got %g, expected more than 0", r.TimeoutSeconds)
	case r.TimeoutSeconds >= r.IntervalSeconds:
		bad(path+"/timeoutSeconds", "got %g, expected less than intervalSeconds (%g)", r.TimeoutSeconds, r.IntervalSeconds)
	}
	if len(r.HTTPStatusCodesForReady) == 0 {
		bad(path+"/httpStatusCodesForReady", "must not be empty")
	}
	for _, c := range r.HTTPStatusCodesForReady {
		if c < 100 || c > 599 {
			bad(path+"/httpStatusCodesForReady", "got %d, expected HTTP status codes (100 to 599)", c)
		}
	}
}
