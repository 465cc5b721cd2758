package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/cluster/master"
)

func init() {
	benchCommands["slow-subscriber"] = command{name: "slow-subscriber", summary: "The master's heap while an operator subscriber stops reading, against one that reads", run: runBenchSlowSubscriber}
}

// The slow-subscriber benchmark shows what a subscriber that stops
// reading costs the master. It runs twice on a fresh in-process master:
// once with one operator subscriber that reads, once with that one and
// another that subscribes and never reads. Frameworks call
// UPDATE_FRAMEWORK in a loop, each call one FRAMEWORK_UPDATED event for
// every operator subscriber; after each round the master's heap is
// measured (runtime.ReadMemStats after a GC — the master is this process).

type slowSubscriberRow struct {
	Events        int     `json:"events"`
	HeapReadingMB float64 `json:"heap_reading_mb"`
	HeapStalledMB float64 `json:"heap_with_stalled_mb"`
	Disconnected  float64 `json:"slow_subscribers_disconnected"`
}

func runBenchSlowSubscriber(args []string) int {
	fs := flag.NewFlagSet("bench slow-subscriber", flag.ContinueOnError)
	events := fs.Int("events", 150000, "events to drive in each run")
	rounds := fs.Int("rounds", 15, "heap samples per run")
	backlog := fs.Int("backlog", master.DefaultMaxSubscriberBacklog, "events a subscriber may fall behind before it is cut (the master's default)")
	callers := fs.Int("frameworks", 8, "frameworks calling UPDATE_FRAMEWORK at once")
	asJSON := fs.Bool("json", false, "print one JSON object per sample instead of a table")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	ctx := context.Background()
	reading, err := slowSubscriberRun(ctx, false, *events, *rounds, *backlog, *callers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench slow-subscriber:", err)
		return 1
	}
	stalled, err := slowSubscriberRun(ctx, true, *events, *rounds, *backlog, *callers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora bench slow-subscriber:", err)
		return 1
	}
	w := newTable()
	if !*asJSON {
		fmt.Fprintln(w, "events\theap, reading subscriber (MB)\theap, + stalled subscriber (MB)\tslow subscribers disconnected")
	}
	for i := range reading {
		row := slowSubscriberRow{Events: reading[i].events, HeapReadingMB: reading[i].heapMB, HeapStalledMB: stalled[i].heapMB, Disconnected: stalled[i].cut}
		if *asJSON {
			b, _ := json.Marshal(row)
			fmt.Println(string(b))
			continue
		}
		fmt.Fprintf(w, "%d\t%.1f\t%.1f\t%.0f\n", row.Events, row.HeapReadingMB, row.HeapStalledMB, row.Disconnected)
	}
	w.Flush()
	return 0
}

type heapSample struct {
	events int
	heapMB float64
	cut    float64
}

func slowSubscriberRun(ctx context.Context, stall bool, events, rounds, backlog, callers int) ([]heapSample, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m, addr, stopMaster, err := startLocalMaster(ctx, master.Config{MaxSubscriberBacklog: backlog})
	if err != nil {
		return nil, err
	}
	defer func() { cancel(); stopMaster() }()
	url := "http://" + addr
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * callers}}

	// The subscriber that reads.
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1", bytes.NewBufferString(`{"type":"SUBSCRIBE"}`))
		req.Header.Set("Content-Type", api.MediaJSON)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	if stall {
		conn, err := stalledOperatorSubscriber(addr)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
	}
	fws := make([]*benchFramework, callers)
	for i := range fws {
		if fws[i], err = subscribeBenchFramework(ctx, client, url, fmt.Sprintf("bench-updater-%d", i)); err != nil {
			return nil, err
		}
	}
	var out []heapSample
	per := events / rounds
	done := 0
	for r := 0; r < rounds; r++ {
		var next atomic.Int64
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for _, f := range fws {
			wg.Add(1)
			go func(f *benchFramework) {
				defer wg.Done()
				for next.Add(1) <= int64(per) {
					if err := f.update(ctx, client, url); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				}
			}(f)
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return out, err
		}
		done += per
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		snap, err := m.Snapshot(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, heapSample{events: done, heapMB: float64(ms.HeapAlloc) / (1 << 20), cut: snap["master/slow_subscribers_disconnected"]})
		fmt.Fprintf(os.Stderr, "bench slow-subscriber: stalled=%v %d events, heap %.1f MB\n", stall, done, float64(ms.HeapAlloc)/(1<<20))
	}
	return out, nil
}

// stalledOperatorSubscriber subscribes to the operator API on a socket
// with a small receive buffer and never reads past the response headers.
func stalledOperatorSubscriber(addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	body := `{"type":"SUBSCRIBE"}`
	fmt.Fprintf(conn, "POST /api/v1 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("stalled subscriber: SUBSCRIBE: %v %v", resp, err)
	}
	return conn, nil
}

// benchFramework is a scheduler that reads its stream and calls
// UPDATE_FRAMEWORK on command.
type benchFramework struct {
	id, streamID, name string
	n                  int
}

func subscribeBenchFramework(ctx context.Context, client *http.Client, url, name string) (*benchFramework, error) {
	body := fmt.Sprintf(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":%q}}}`, name)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1/scheduler", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Accept", api.MediaJSON)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("framework %s: SUBSCRIBE: %s", name, resp.Status)
	}
	rr := api.NewRecordReader(resp.Body)
	rec, err := rr.ReadRecord()
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	var ev struct {
		Subscribed struct {
			FrameworkID struct{ Value string } `json:"framework_id"`
		} `json:"subscribed"`
	}
	if err := json.Unmarshal(rec, &ev); err != nil || ev.Subscribed.FrameworkID.Value == "" {
		resp.Body.Close()
		return nil, fmt.Errorf("framework %s: no SUBSCRIBED event: %v", name, err)
	}
	go func() {
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
	}()
	return &benchFramework{id: ev.Subscribed.FrameworkID.Value, streamID: resp.Header.Get("Mesos-Stream-Id"), name: name}, nil
}

func (f *benchFramework) update(ctx context.Context, client *http.Client, url string) error {
	f.n++
	call := fmt.Sprintf(`{"type":"UPDATE_FRAMEWORK","framework_id":{"value":%q},"update_framework":{"framework_info":{"id":{"value":%q},"user":"root","name":%q,"labels":{"labels":[{"key":"update","value":"%d"}]}}}}`,
		f.id, f.id, f.name, f.n)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1/scheduler", bytes.NewBufferString(call))
	req.Header.Set("Content-Type", api.MediaJSON)
	req.Header.Set("Mesos-Stream-Id", f.streamID)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("framework %s: UPDATE_FRAMEWORK: %s %s", f.name, resp.Status, b)
	}
	return nil
}
