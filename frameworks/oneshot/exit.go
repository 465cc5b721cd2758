package oneshot

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

var (
	exitedRE   = regexp.MustCompile(`exited with status (\d+)`)
	signaledRE = regexp.MustCompile(`terminated with signal (.+)$`)
)

// ExitCode maps a task's terminal status to a shell-style exit code:
// TASK_FINISHED is 0; TASK_FAILED is the N of "Command exited with status
// N", or 128+signal for "Command terminated with signal NAME", or 1. ok is
// false for the other states (killed, lost, error, ...), which did not end
// by the command's own doing.
func ExitCode(status mesos.TaskStatus) (code int, ok bool) {
	switch status.GetState() {
	case mesos.TASK_FINISHED:
		return 0, true
	case mesos.TASK_FAILED:
		msg := status.GetMessage()
		if m := exitedRE.FindStringSubmatch(msg); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil {
				return n, true
			}
		}
		if m := signaledRE.FindStringSubmatch(strings.TrimSpace(msg)); m != nil {
			if n := signalNumber(m[1]); n > 0 {
				return 128 + n, true
			}
		}
		return 1, true
	}
	return 1, false
}

// signalNumber understands the names Mesos (strsignal) and Go print, and
// plain numbers.
func signalNumber(name string) int {
	name = strings.TrimSpace(name)
	if n, err := strconv.Atoi(name); err == nil {
		return n
	}
	for i := 1; i < 32; i++ {
		if strings.EqualFold(syscall.Signal(i).String(), name) {
			return i
		}
	}
	return 0
}
