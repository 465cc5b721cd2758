package plan

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// HealthCheck is one of an app's healthChecks, in Marathon's JSON. Every
// protocol is run by the agent as a Mesos health check: the Mesos-level
// ones (MESOS_HTTP, MESOS_HTTPS, MESOS_TCP, COMMAND) as they are, and the
// legacy Marathon-level ones (HTTP, HTTPS, TCP) as their Mesos-level
// equivalents, so that no check runs from the scheduler (whose overload
// and partitions killed healthy tasks in Marathon).
type HealthCheck struct {
	Protocol               string     `json:"protocol"`
	Path                   string     `json:"path,omitempty"`
	PortIndex              *int       `json:"portIndex,omitempty"`
	Port                   *int       `json:"port,omitempty"`
	Command                *HealthCmd `json:"command,omitempty"`
	GracePeriodSeconds     float64    `json:"gracePeriodSeconds"`
	IntervalSeconds        float64    `json:"intervalSeconds"`
	TimeoutSeconds         float64    `json:"timeoutSeconds"`
	MaxConsecutiveFailures int        `json:"maxConsecutiveFailures"`
	DelaySeconds           float64    `json:"delaySeconds"`
	IgnoreHTTP1xx          bool       `json:"ignoreHttp1xx,omitempty"`
}

// HealthCmd is a COMMAND check's command.
type HealthCmd struct {
	Value string `json:"value"`
}

// Health check protocols.
const (
	ProtoHTTP       = "HTTP"
	ProtoHTTPS      = "HTTPS"
	ProtoTCP        = "TCP"
	ProtoMesosHTTP  = "MESOS_HTTP"
	ProtoMesosHTTPS = "MESOS_HTTPS"
	ProtoMesosTCP   = "MESOS_TCP"
	ProtoCommand    = "COMMAND"
)

var protocols = []string{ProtoHTTP, ProtoHTTPS, ProtoTCP, ProtoMesosHTTP, ProtoMesosHTTPS, ProtoMesosTCP, ProtoCommand}

// UnmarshalJSON decodes a check onto Marathon's defaults.
func (h *HealthCheck) UnmarshalJSON(b []byte) error {
	type plain HealthCheck
	p := plain{Protocol: ProtoHTTP, GracePeriodSeconds: 300, IntervalSeconds: 60, TimeoutSeconds: 20,
		MaxConsecutiveFailures: 3, DelaySeconds: 15}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*h = HealthCheck(p)
	return nil
}

func (h *HealthCheck) usesPort() bool { return h.Protocol != ProtoCommand }

func (h *HealthCheck) validate(i int, ports int, bad func(path, format string, args ...any)) {
	path := fmt.Sprintf("/healthChecks(%d)", i)
	if !contains(protocols, h.Protocol) {
		bad(path+"/protocol", "got %q, expected one of [%s]", h.Protocol, strings.Join(protocols, ", "))
		return
	}
	switch {
	case h.Protocol == ProtoCommand && (h.Command == nil || strings.TrimSpace(h.Command.Value) == ""):
		bad(path+"/command", "a COMMAND health check needs command.value")
	case h.Protocol != ProtoCommand && h.Command != nil:
		bad(path+"/command", "only a COMMAND health check takes a command")
	}
	if h.usesPort() {
		switch {
		case h.Port != nil && h.PortIndex != nil:
			bad(path, "give portIndex or port, not both")
		case h.Port != nil && (*h.Port < 1 || *h.Port > 65535):
			bad(path+"/port", "got %d, expected between 1 and 65535", *h.Port)
		case h.Port == nil && h.portIndex() < 0:
			bad(path+"/portIndex", "got %d, expected 0 or more", h.portIndex())
		case h.Port == nil && h.portIndex() >= ports:
			bad(path+"/portIndex", "got %d, but the app has %d port(s)", h.portIndex(), ports)
		}
	}
	if h.Path != "" && !h.isHTTP() {
		bad(path+"/path", "only HTTP health checks take a path")
	}
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		bad(path+"/path", "got %q, expected an absolute path (starting with /)", h.Path)
	}
	if h.IntervalSeconds <= 0 {
		bad(path+"/intervalSeconds", "got %g, expected more than 0", h.IntervalSeconds)
	}
	if h.TimeoutSeconds <= 0 {
		bad(path+"/timeoutSeconds", "got %g, expected more than 0", h.TimeoutSeconds)
	}
	if h.GracePeriodSeconds < 0 {
		bad(path+"/gracePeriodSeconds", "got %g, expected 0 or more", h.GracePeriodSeconds)
	}
	if h.DelaySeconds < 0 {
		bad(path+"/delaySeconds", "got %g, expected 0 or more", h.DelaySeconds)
	}
	if h.MaxConsecutiveFailures < 0 {
		bad(path+"/maxConsecutiveFailures", "got %d, expected 0 or more", h.MaxConsecutiveFailures)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func (h *HealthCheck) portIndex() int {
	if h.PortIndex == nil {
		return 0
	}
	return *h.PortIndex
}

func (h *HealthCheck) isHTTP() bool {
	switch h.Protocol {
	case ProtoHTTP, ProtoHTTPS, ProtoMesosHTTP, ProtoMesosHTTPS:
		return true
	}
	return false
}

func (h *HealthCheck) legacy() bool {
	return h.Protocol == ProtoHTTP || h.Protocol == ProtoHTTPS || h.Protocol == ProtoTCP
}

// MesosHealthCheck is the agent-run check of an app's first health check
// for an instance given hostPorts, or nil if the app has none. A legacy
// check's maxConsecutiveFailures of 0 meant "never kill" in Marathon; the
// agent kills at its count, so 0 becomes a count never reached.
func (a *App) MesosHealthCheck(hostPorts []uint64) *mesos.HealthCheck {
	if len(a.HealthChecks) == 0 {
		return nil
	}
	h := a.HealthChecks[0]
	failures := uint32(h.MaxConsecutiveFailures)
	if h.MaxConsecutiveFailures == 0 && h.legacy() {
		failures = math.MaxUint32
	}
	mh := &mesos.HealthCheck{DelaySeconds: &h.DelaySeconds, IntervalSeconds: &h.IntervalSeconds,
		TimeoutSeconds: &h.TimeoutSeconds, ConsecutiveFailures: &failures, GracePeriodSeconds: &h.GracePeriodSeconds}
	port := uint32(0)
	switch {
	case h.Port != nil:
		port = uint32(*h.Port)
	case h.portIndex() < len(hostPorts):
		port = uint32(hostPorts[h.portIndex()])
	}
	switch h.Protocol {
	case ProtoCommand:
		shell := true
		value := h.Command.Value
		mh.Type = mesos.HealthCheck_COMMAND
		mh.Command = &mesos.CommandInfo{Shell: &shell, Value: &value}
	case ProtoTCP, ProtoMesosTCP:
		mh.Type = mesos.HealthCheck_TCP
		mh.TCP = &mesos.HealthCheck_TCPCheckInfo{Port: port}
	default:
		scheme, path := "http", h.Path
		if h.Protocol == ProtoHTTPS || h.Protocol == ProtoMesosHTTPS {
			scheme = "https"
		}
		if path == "" {
			path = "/"
		}
		mh.Type = mesos.HealthCheck_HTTP
		mh.HTTP = &mesos.HealthCheck_HTTPCheckInfo{Scheme: &scheme, Port: port, Path: &path}
	}
	return mh
}
