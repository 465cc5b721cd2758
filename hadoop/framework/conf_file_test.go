package framework_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-cluster/agora/hadoop/client"
	"github.com/agora-cluster/agora/hadoop/framework"
	"github.com/agora-cluster/agora/hadoop/job"
)

// A submission's -conf names a file on the framework's host: a fifo there
// must not hold the handler in open(2) until some writer comes.
func TestConfFileThatIsAFifoIsRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "conf.xml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := framework.Prepare(client.SubmitRequest{
			Args: []string{"-conf", fifo, "-input", "in", "-output", "out", "-mapper", "cat"},
			Cwd:  dir,
		})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, job.ErrUsage) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("a fifo -conf: %v, want a usage error naming %s as not a regular file", err, fifo)
		}
	case <-time.After(wait):
		// Let the stuck open return, so the test ends.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatalf("the submission was still being parsed after %v: the fifo's open blocked", wait)
	}
}
