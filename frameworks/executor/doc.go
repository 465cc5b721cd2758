// Package executor is agora's executor SDK: a driver for the Mesos v1
// executor HTTP API (POST /api/v1/executor on the agent) for executors
// written in Go.
//
// A Driver subscribes with the agent named by the MESOS_* environment
// (FromEnv), delivers the agent's events to a Handler from one goroutine,
// keeps every task and status update the agent has not acknowledged, and
// resends them when it subscribes again. After a broken subscription a
// checkpointing framework's executor re-subscribes with backoff for up to
// MESOS_RECOVERY_TIMEOUT (surviving an agent restart); any other executor
// exits, as Mesos expects. Run returns nil after SHUTDOWN, once the
// handler's Shutdown has killed the tasks.
//
// A minimal executor that runs nothing but reports every task finished:
//
//	cfg, err := executor.FromEnv()
//	if err != nil { ... }
//	var d *executor.Driver
//	d, err = executor.New(cfg, executor.Funcs{
//		OnLaunch: func(ctx context.Context, t mesos.TaskInfo) {
//			_ = d.SendStatus(ctx, t.TaskID, mesos.TASK_RUNNING, "")
//			_ = d.SendStatus(ctx, t.TaskID, mesos.TASK_FINISHED, "")
//		},
//	})
//	if err != nil { ... }
//	err = d.Run(context.Background())
//
// Against an agent that serves TLS (LIBPROCESS_SSL_ENABLED) the driver
// verifies the agent's certificate with LIBPROCESS_SSL_CA_FILE, unless
// LIBPROCESS_SSL_VERIFY_CERT=false says not to (libprocess's variable;
// LIBPROCESS_SSL_REQUIRE_CERT=true verifies it regardless).
//
// examples/executor is a complete executor that runs each task's command.
package executor
