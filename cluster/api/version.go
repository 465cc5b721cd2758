package api

// Version is agora's release; MesosVersion is the Mesos release whose v1 API
// agora speaks (reported by /version for tools that check it).
var (
	Version      = "0.1.0-dev"
	MesosVersion = "1.11.0"
)
