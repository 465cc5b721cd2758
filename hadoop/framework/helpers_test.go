package framework_test

import (
	"log/slog"
	"strings"
	"syscall"
	"testing"
)

type slogLogger = slog.Logger

// newTestLogger sends the framework's logs to the test log.
func newTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
