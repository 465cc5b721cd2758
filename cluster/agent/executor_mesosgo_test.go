package agent_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/executor/events"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
)

// runMesosGoExecutor is an executor written only against mesos-go's v1
// executor library (v0.0.11), the way its api/v1/cmd/example-executor is:
// configuration from the environment (config.FromEnv), protobuf, SUBSCRIBE
// with the unacknowledged tasks and updates, RUNNING then FINISHED for
// every task, exit on SHUTDOWN. It answers MESSAGE events by sending the
// data back.
func runMesosGoExecutor() int {
	cfg, err := config.FromEnv()
	if err != nil {
		log.Print("configuration: ", err)
		return 2
	}
	apiURL := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: "/api/v1/executor"}
	cli := httpcli.New(
		httpcli.Endpoint(apiURL.String()),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))),
	)
	opts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	sender := calls.SenderWith(httpexec.NewSender(cli.Send), opts...)
	subscriber := calls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), opts...)
	var (
		execInfo       mesos.ExecutorInfo
		unackedTasks   = map[mesos.TaskID]mesos.TaskInfo{}
		unackedUpdates = map[string]executor.Call_Update{}
		shouldQuit     bool
	)
	update := func(status mesos.TaskStatus) error {
		upd := calls.Update(status)
		resp, err := sender.Send(context.Background(), calls.NonStreaming(upd))
		if resp != nil {
			resp.Close()
		}
		if err == nil {
			unackedUpdates[string(status.UUID)] = *upd.Update
		}
		return err
	}
	newStatus := func(id mesos.TaskID, state mesos.TaskState) mesos.TaskStatus {
		u := make([]byte, 16)
		_, _ = rand.Read(u)
		return mesos.TaskStatus{TaskID: id, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
			ExecutorID: &execInfo.ExecutorID, UUID: u}
	}
	errAbort := errors.New("ERROR from the agent")
	handler := events.HandlerFuncs{
		executor.Event_SUBSCRIBED: func(_ context.Context, e *executor.Event) error {
			execInfo = e.Subscribed.ExecutorInfo
			log.Printf("SUBSCRIBED to agent %s as %s", e.Subscribed.AgentInfo.GetID().GetValue(), execInfo.ExecutorID.Value)
			return nil
		},
		executor.Event_LAUNCH: func(_ context.Context, e *executor.Event) error {
			task := e.Launch.Task
			unackedTasks[task.TaskID] = task
			if err := update(newStatus(task.TaskID, mesos.TASK_RUNNING)); err != nil {
				return err
			}
			return update(newStatus(task.TaskID, mesos.TASK_FINISHED))
		},
		executor.Event_KILL: func(_ context.Context, e *executor.Event) error { return nil },
		executor.Event_ACKNOWLEDGED: func(_ context.Context, e *executor.Event) error {
			delete(unackedTasks, e.Acknowledged.TaskID)
			delete(unackedUpdates, string(e.Acknowledged.UUID))
			return nil
		},
		executor.Event_MESSAGE: func(_ context.Context, e *executor.Event) error {
			resp, err := sender.Send(context.Background(), calls.NonStreaming(calls.Message(append([]byte("mesos-go: "), e.Message.Data...))))
			if resp != nil {
				resp.Close()
			}
			return err
		},
		executor.Event_SHUTDOWN: func(_ context.Context, e *executor.Event) error {
			shouldQuit = true
			return nil
		},
		executor.Event_ERROR:     func(_ context.Context, e *executor.Event) error { return errAbort },
		executor.Event_HEARTBEAT: func(_ context.Context, e *executor.Event) error { return nil },
	}
	for attempt := 0; attempt < 3; attempt++ {
		var tasks []mesos.TaskInfo
		for _, t := range unackedTasks {
			tasks = append(tasks, t)
		}
		var updates []executor.Call_Update
		for _, u := range unackedUpdates {
			updates = append(updates, u)
		}
		resp, err := subscriber.Send(context.Background(), calls.NonStreaming(calls.Subscribe(tasks, updates)))
		if err == nil {
			err = eventLoop(resp, handler, &shouldQuit)
		}
		if resp != nil {
			resp.Close()
		}
		if shouldQuit {
			log.Print("SHUTDOWN: exiting")
			return 0
		}
		log.Print("disconnected: ", err)
		if !cfg.Checkpoint {
			return 1
		}
		time.Sleep(time.Second)
	}
	return 1
}

func eventLoop(decoder encoding.Decoder, h events.Handler, quit *bool) error {
	for !*quit {
		var e executor.Event
		if err := decoder.Decode(&e); err != nil {
			return err
		}
		if err := h.HandleEvent(context.Background(), &e); err != nil {
			return err
		}
	}
	return nil
}

// runHTTPServer serves 200 on every path at 127.0.0.1:$HTTP_PORT until the
// file $STOP_FILE exists; then it stops serving (closes its listener) but
// keeps running, as a hung server does.
func runHTTPServer() int {
	port, err := strconv.Atoi(os.Getenv("HTTP_PORT"))
	if err != nil {
		log.Print("HTTP_PORT: ", err)
		return 2
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		log.Print(err)
		return 2
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})}
	go srv.Serve(ln)
	stop := os.Getenv("STOP_FILE")
	for {
		if _, err := os.Stat(stop); err == nil {
			srv.Close()
			log.Print("server stopped; still running")
			select {}
		}
		time.Sleep(50 * time.Millisecond)
	}
}
