package multilang

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestSendToAnEndedComponentIsItsEnd: a write to a component whose input
// is closed — it was killed, or is exiting — reports the component's end
// (ErrEnded, which the runtime answers with a restart), not a failed write
// (which stops the topology). Both ways a write finds the input closed are
// covered: the component closes its stdin and exits a moment later (the
// write fails with EPIPE before its exit is seen), and the component has
// exited and been reaped (the pipe is closed on our side).
func TestSendToAnEndedComponentIsItsEnd(t *testing.T) {
	handshake := `read setup; read end; echo "{\"pid\": $$}"; echo end; `
	for _, c := range []struct{ name, script string }{
		{"closes its input, then exits", handshake + `exec 0<&-; sleep 0.5; exit 3`},
		{"exits", handshake + `exit 0`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := Start(ctx, "split", t.TempDir(), []string{"sh", "-c", c.script}, Setup{}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Kill()
			deadline := time.Now().Add(30 * time.Second)
			for {
				err = p.Send(map[string]any{"id": "1", "tuple": []any{"a sentence"}})
				if err != nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !errors.Is(err, ErrEnded) {
				t.Fatalf("Send to an ended component: %v, want ErrEnded", err)
			}
		})
	}
}
