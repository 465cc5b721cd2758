package containerizer

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/agora-cluster/agora/cluster/containerizer/containerinit"
)

// InitCommand is the hidden subcommand that runs the container init
// ("agora __init <container-id>"). Any program that links this package can
// serve as the init (package containerinit intercepts the invocation while
// the program initializes), so test binaries work as the agora binary does.
const InitCommand = containerinit.Command

// RunInit runs the container init and returns its exit status; called by
// `agora __init` when the invocation lacks the agent's pipes, it says so.
func RunInit() int { return containerinit.Run() }

var errInitGone = errors.New("the container init exited before starting the task")

// under reports whether path is dir or below it.
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
