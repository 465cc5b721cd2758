package containerizer

import (
	"fmt"
	"os"
	"strings"
)

// Options choose the agent's containerizer from Mesos-style flags.
type Options struct {
	// Isolation is Mesos's --isolation. "" picks the native containerizer
	// when running as root and plain processes otherwise. "posix" (or a
	// list of posix/* isolators) asks for plain processes. "cgroups" (or
	// any list naming cgroups/*, namespaces/* or filesystem/linux) asks for
	// the native containerizer, which then always applies all of its
	// isolation: cgroups cpu, memory and pids, and pid, mount, IPC and UTS
	// namespaces.
	Isolation string
	// Native configures the native containerizer.
	Native NativeConfig
}

// New returns the containerizer opts ask for. Without root, or where the
// cgroup controllers are missing, an unspecified isolation falls back to
// Process, whose Warnings say so; an explicit request for isolation that
// cannot be had is an error.
func New(opts Options) (Containerizer, error) {
	mode, err := isolationMode(opts.Isolation)
	if err != nil {
		return nil, err
	}
	if mode == "posix" {
		return Process{Reason: "--isolation=" + opts.Isolation}, nil
	}
	if os.Geteuid() != 0 {
		if mode == "native" {
			return nil, fmt.Errorf("containerizer: --isolation=%s needs root (cgroups and namespaces); run the agent as root or use --isolation=posix", opts.Isolation)
		}
		return Process{Reason: "the agent is not running as root"}, nil
	}
	n, err := NewNative(opts.Native)
	if err != nil {
		if mode == "native" {
			return nil, err
		}
		return Process{Reason: err.Error()}, nil
	}
	return n, nil
}

// isolationMode maps --isolation to "auto", "posix" or "native".
func isolationMode(isolation string) (string, error) {
	if strings.TrimSpace(isolation) == "" {
		return "auto", nil
	}
	posix, native := false, false
	for _, iso := range strings.Split(isolation, ",") {
		iso = strings.TrimSpace(iso)
		switch {
		case iso == "posix" || strings.HasPrefix(iso, "posix/") || iso == "filesystem/posix":
			posix = true
		case iso == "cgroups" || iso == "native" || strings.HasPrefix(iso, "cgroups/") ||
			strings.HasPrefix(iso, "namespaces/") || iso == "filesystem/linux":
			native = true
		case iso == "":
		default:
			return "", fmt.Errorf("containerizer: --isolation: unknown isolator %q (use posix, or cgroups for cgroups and namespaces)", iso)
		}
	}
	if native {
		return "native", nil
	}
	if posix {
		return "posix", nil
	}
	return "auto", nil
}
