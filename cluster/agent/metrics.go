package agent

import (
	"net/http"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// promName maps a Mesos metric name to a Prometheus one: slave/cpus_used
// becomes agora_slave_cpus_used, as the master's do.
var promName = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// metricsCollector exposes /metrics/snapshot to Prometheus as agora_*
// gauges.
type metricsCollector struct{ a *Agent }

// Describe sends nothing: the metric set follows the agent's state
// (the journal's appear with it), so the collector is unchecked.
func (c metricsCollector) Describe(chan<- *prometheus.Desc) {}

func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	for name, v := range c.a.metricsSnapshot() {
		desc := prometheus.NewDesc("agora_"+promName.ReplaceAllString(name, "_"), "Mesos metric "+name, nil, nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
}

// prometheusHandler is /metrics: the agent's metrics in Prometheus's
// text format, with the Go runtime's and the process's.
func (a *Agent) prometheusHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricsCollector{a}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
