// Package kafkatest runs a real Kafka broker for tests: the home of
// `agora dist install kafka`, formatted and started on loopback ports of
// its own, with its data in the test's directory, stopped when the test
// ends.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/agora-cluster/agora/cluster/clustertest"
	"github.com/agora-cluster/agora/dist/disttest"
)

// Broker is a running single-node Kafka cluster.
type Broker struct {
	Home      string // the Kafka home it runs from
	Bootstrap string // the broker's listener, 127.0.0.1:PORT
	Log       string // the file holding its output
	cmd       *exec.Cmd
	exited    chan struct{}
}

// Start formats and starts a broker and waits until it answers a metadata
// request. A port taken between picking and binding makes the start fail,
// and it is tried again on other ports.
func Start(t testing.TB) *Broker {
	t.Helper()
	home := disttest.Home(t, "kafka")
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		b := &Broker{Home: home}
		err := b.start(t.TempDir())
		if err == nil {
			t.Cleanup(b.Stop)
			return b
		}
		b.Stop()
		last = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("kafkatest: %v", last)
	return nil
}

var errPortTaken = errors.New("port taken")

func (b *Broker) start(dir string) error {
	port, _ := clustertest.PortRange(2)
	b.Bootstrap = fmt.Sprintf("127.0.0.1:%d", port)
	props := filepath.Join(dir, "server.properties")
	conf := fmt.Sprintf(`process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:%[2]d
log.dirs=%[3]s
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
`, port, port+1, filepath.Join(dir, "data"))
	if err := os.WriteFile(props, []byte(conf), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kafka := filepath.Join(b.Home, "bin", "kafka")
	heap := "KAFKA_HEAP_OPTS=-Xmx256m -Xms64m"
	if out, err := exec.CommandContext(ctx, kafka, "format", props).CombinedOutput(); err != nil {
		return fmt.Errorf("kafka format: %v: %s", err, tail(string(out), 2000))
	}
	b.Log = filepath.Join(dir, "kafka.log")
	f, err := os.Create(b.Log)
	if err != nil {
		return err
	}
	b.cmd = exec.Command(kafka, "server", props)
	b.cmd.Env = append(os.Environ(), heap)
	b.cmd.Stdout, b.cmd.Stderr = f, f
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start kafka: %w", err)
	}
	b.exited = make(chan struct{})
	go func() { b.cmd.Wait(); f.Close(); close(b.exited) }()
	return b.waitReady(ctx)
}

// waitReady asks the broker for the cluster's metadata until it answers
// with itself as a broker, or the broker exits, or ctx ends.
func (b *Broker) waitReady(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Bootstrap))
	if err != nil {
		return err
	}
	defer cl.Close()
	var last error
	for {
		select {
		case <-b.exited:
			log := b.Tail(4000)
			if strings.Contains(log, "BindException") || strings.Contains(log, "Address already in use") {
				return fmt.Errorf("%w: %s", errPortTaken, log)
			}
			// How it ended (a signal: killed from outside) before its log.
			return fmt.Errorf("kafka exited (%v): %s", b.cmd.ProcessState, log)
		case <-ctx.Done():
			return fmt.Errorf("kafka did not answer within the limit (last: %v): %s", last, b.Tail(3000))
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = cl.Ping(pctx)
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Stop kills the broker (kill -9: its data may be mid-write, as after a
// crash) and waits for it.
func (b *Broker) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	select {
	case <-b.exited: // reaped: its pid may be another process's group now
		return
	default:
	}
	syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
	}
}

// Tail is the end of the broker's output, for failure messages.
func (b *Broker) Tail(n int) string {
	data, _ := os.ReadFile(b.Log)
	return tail(string(data), n)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
