package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/agora-cluster/agora/cluster/tlsconf"
	"github.com/agora-cluster/agora/lambda/framework"
	"github.com/agora-cluster/agora/lambda/pipeline"
	"github.com/agora-cluster/agora/lambda/plan"
	"github.com/agora-cluster/agora/lambda/serve"
)

func init() {
	register(command{name: "lambda", summary: "Lambda pipelines: Kafka in, a batch and a speed layer, one merged query", run: runLambda})
}

var lambdaCommands = map[string]command{
	"up": {name: "up", summary: "Run a pipeline from its spec (the embedded broker unless --kafka)", run: func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return lambdaUp(ctx, args, os.Stdout, os.Stderr)
	}},
	"send":   {name: "send", summary: "Send JSON-lines events from stdin (or files) to a pipeline's topic", run: func(args []string) int { return lambdaSend(args, os.Stdin, os.Stdout, os.Stderr) }},
	"query":  {name: "query", summary: "Ask a view for one key over a time range (batch and realtime merged)", run: func(args []string) int { return lambdaQuery(args, os.Stdout, os.Stderr) }},
	"status": {name: "status", summary: "Show what was ingested, the batch watermark and the speed layer's offsets", run: func(args []string) int { return lambdaStatus(args, os.Stdout, os.Stderr) }},
	"down":   {name: "down", summary: "Stop the pipeline `up` runs (its layers and tasks); its data stays", run: func(args []string) int { return lambdaDown(args, os.Stdout, os.Stderr) }},
	"batch":  {name: "batch", summary: "Run the batch layer now and swap its view in", run: func(args []string) int { return lambdaBatch(args, os.Stdout, os.Stderr) }},
	// The layers as tasks, which `up --master` launches.
	"ingest":      {name: "ingest", summary: "Task of `up --master`: append the input topic to the master dataset", run: lambdaTask(lambdaIngestTask)},
	"speed":       {name: "speed", summary: "Task of `up --master`: the speed layer and the query API over both views", run: lambdaTask(lambdaSpeedTask)},
	"recompute":   {name: "recompute", summary: "Task of `up --master`: one batch job, replacing the batch view", run: lambdaTask(lambdaRecomputeTask)},
	"storm-speed": {name: "storm-speed", summary: "The speed layer as a Storm topology (Kafka spout, counting bolt) on the native runtime or a real Nimbus", run: lambdaTask(lambdaStormSpeed)},
	"storm-spout": {name: "storm-spout", summary: "Multilang Kafka spout of `storm-speed`", run: func(args []string) int { return lambdaStormComponent("storm-spout", args) }},
	"storm-bolt":  {name: "storm-bolt", summary: "Multilang counting bolt of `storm-speed`, serving the query API", run: func(args []string) int { return lambdaStormComponent("storm-bolt", args) }},
	"map":         {name: "map", summary: "Streaming mapper of the batch job on the Hadoop framework (`up --hadoop`)", run: func(args []string) int { return lambdaMap(args, os.Stdin, os.Stdout, os.Stderr) }},
	"reduce":      {name: "reduce", summary: "Streaming reducer of the batch job on the Hadoop framework (`up --hadoop`)", run: func(args []string) int { return lambdaReduce(args, os.Stdin, os.Stdout, os.Stderr) }},
}

func runLambda(args []string) int {
	return dispatchTo("agora lambda", "command", lambdaCommands, lambdaUsage, args)
}

func lambdaUsage() {
	var b strings.Builder
	b.WriteString("Usage: agora lambda COMMAND [flags]\n\n`up` runs a pipeline (examples/lambda-pageviews/pipeline.yaml); the others talk to it.\n\nCommands:\n")
	writeCommandList(&b, lambdaCommands)
	b.WriteString("\nThe query API is found through --api or AGORA_LAMBDA_API (default " + lambdaAPIDefault + ").\n")
	fmt.Fprint(os.Stderr, b.String())
}

const lambdaAPIDefault = "127.0.0.1:8090"

func lambdaAPI() string {
	if v := os.Getenv("AGORA_LAMBDA_API"); v != "" {
		return v
	}
	return lambdaAPIDefault
}

func readSpec(path string) (*plan.Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := plan.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func lambdaUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora lambda up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: agora lambda up PIPELINE.yaml [flags]

Runs the pipeline in this process until interrupted: the broker (an
in-process Kafka-compatible one unless --kafka names real brokers), the
ingester appending the master dataset exactly once per offset, the speed
layer, the batch layer every batch.period, and the query API. Events that
do not match the schema go to the dead-letter topic (TOPIC-dead).

With --master, the ingester, the speed layer (which serves the queries)
and each batch job run instead as tasks of a framework on that agora
cluster, each launched again when it dies; this process keeps the broker,
the batch timer and the query API, which forwards to the speed task.
With --nimbus as well, the speed task runs the speed layer as a topology
on that real Storm, whose counting bolt then serves the queries.

Example:
  agora lambda up examples/lambda-pageviews/pipeline.yaml
  agora lambda up examples/lambda-pageviews/pipeline.yaml --master 127.0.0.1:5050 --work_dir /shared/pageviews
  agora lambda up examples/lambda-pageviews/pipeline.yaml --master 127.0.0.1:5050 --work_dir /shared/pageviews \
      --kafka 127.0.0.1:9092 --cassandra 127.0.0.1:9042 --nimbus 127.0.0.1:6627
  agora lambda send --topic pageviews < events.jsonl
  agora lambda query --view views --key /index.html

Flags:
`)
		fs.PrintDefaults()
	}
	kafka := fs.String("kafka", "", "comma-separated Kafka bootstrap servers; empty runs the embedded broker")
	brokerAddr := fs.String("broker_addr", "127.0.0.1:9092", "the embedded broker's address (port 0: any)")
	api := fs.String("api", lambdaAPIDefault, "the query API's address (port 0: any)")
	dir := fs.String("work_dir", "", "where the master dataset (and the embedded broker's log) is kept\n(default: ./lambda-NAME)")
	period := fs.Duration("batch_period", 0, "the batch layer's period (default: the spec's batch.period)")
	master := fs.String("master", "", "an agora master (HOST:PORT, or zk://...): run the ingester, the speed layer and\nthe batch jobs as its tasks; --work_dir must then be a directory every agent sees,\nand --broker_addr an address the agents reach")
	hadoop := fs.String("hadoop", "", "with --master: run each batch job on agora's Hadoop framework at this HOST:PORT\n(a Streaming job of `agora lambda map` and `reduce`) instead of in the batch task")
	stormFramework := fs.Bool("storm_framework", false, "with --master and layers.speed: storm: submit the speed layer's topology to agora's\nStorm framework (its worker a task of agora-storm-native, launched again when it dies)\ninstead of running it inside the speed task")
	batchPause := fs.Duration("batch_pause", 0, "with --master: each batch job holds its finished view this long before\nswapping it in (for fault tests: a window to kill an attempt in)")
	cassandra := fs.String("cassandra", "", "comma-separated Cassandra native-transport addresses (HOST:9042): keep the batch\nviews there and answer queries from it (layers.serving: cassandra needs it)")
	cassandraRF := fs.Int("cassandra_rf", 1, "the replication factor of the batch views' keyspace in Cassandra")
	nimbus := fs.String("nimbus", "", "with --master: run the speed layer as a Storm topology on the real Storm whose\nNimbus is at HOST:PORT (as layers.speed: storm, whatever the spec says); the\nspeed task submits it, a task started again replaces it, and `down` kills it.\nThe supervisors' hosts need this binary, the spec and --work_dir at the same paths")
	var masterOpts clientOptions
	masterOpts.registerCredential(fs)
	fs.StringVar(&masterOpts.caFile, "ca_file", os.Getenv("AGORA_CA_FILE"), "with --master: PEM file of the CA that signed the master's certificate (env AGORA_CA_FILE);\n"+
		"the pipeline's framework (and with --storm_framework the speed task's topology) subscribes over HTTPS verified\n"+
		"with it, presenting --principal and --secret_file, which the speed task gets as files in --work_dir")
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "agora lambda up: give one pipeline spec (see --help)")
		return 2
	}
	spec, err := readSpec(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "agora lambda up:", err)
		return 2
	}
	if *nimbus != "" {
		switch {
		case *master == "":
			fmt.Fprintln(stderr, "agora lambda up: --nimbus: the speed layer's topology is submitted by the speed task of --master HOST:PORT; give --master")
			return 2
		case *stormFramework:
			fmt.Fprintln(stderr, "agora lambda up: give --storm_framework (agora's Storm) or --nimbus (a real Storm), not both")
			return 2
		}
		spec.Layers.Speed = "storm"
	}
	if *master == "" {
		// Without --master nothing subscribes: the master's credentials
		// and CA would be ignored.
		var given []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "principal" || f.Name == "secret_file" || f.Name == "ca_file" {
				given = append(given, "--"+f.Name)
			}
		})
		if len(given) > 0 {
			fmt.Fprintf(stderr, "agora lambda up: %s: the master's credentials and CA, for the pipeline's framework; they need --master HOST:PORT (without it the pipeline runs in this process and calls no master)\n", strings.Join(given, ", "))
			return 2
		}
	}
	if spec.Layers.Speed == "storm" && *master == "" {
		fmt.Fprintf(stderr, "agora lambda up: %s: layers.speed is storm: the topology runs as the speed task of --master HOST:PORT\n", pos[0])
		return 2
	}
	if spec.Layers.Serving == "cassandra" && *cassandra == "" {
		fmt.Fprintf(stderr, "agora lambda up: %s: layers.serving is cassandra: give the ring's addresses with --cassandra HOST:9042\n", pos[0])
		return 2
	}
	if *cassandraRF < 1 {
		fmt.Fprintf(stderr, "agora lambda up: --cassandra_rf %d: at least 1\n", *cassandraRF)
		return 2
	}
	if *dir == "" {
		*dir = "lambda-" + spec.Name
	}
	cfg := pipeline.Config{Spec: spec, Dir: *dir, QueryAddr: *api, BrokerAddr: *brokerAddr, BatchPeriod: *period, CassandraRF: *cassandraRF}
	if *kafka != "" {
		cfg.Brokers = strings.Split(*kafka, ",")
	}
	if *cassandra != "" {
		cfg.Cassandra = strings.Split(*cassandra, ",")
	}
	if *master != "" {
		o := upTasks{master: *master, hadoop: *hadoop, nimbus: *nimbus, stormFramework: *stormFramework, batchPause: *batchPause, caFile: masterOpts.caFile}
		if o.cred, err = masterOpts.credential(); err == nil && o.caFile != "" {
			o.tls, err = tlsconf.ClientConfig(o.caFile)
			if err != nil {
				err = fmt.Errorf("--ca_file: %w", err)
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, "agora lambda up:", err)
			return 2
		}
		return lambdaUpTasks(ctx, pos[0], o, cfg, stdout, stderr)
	}
	p, err := pipeline.Start(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "agora lambda up:", err)
		return 1
	}
	fmt.Fprintf(stdout, "pipeline %s is up\n  send events to:  topic %s on %s (agora lambda send --brokers %s --topic %s)\n  query:           http://%s/v1/query?view=%s&key=... (agora lambda query --api %s)\n  page:            http://%s/ui/\n  dataset:         %s\n",
		spec.Name, spec.Input.Topic, strings.Join(p.Brokers, ","), strings.Join(p.Brokers, ","), spec.Input.Topic, p.Query, spec.Views[0].Name, p.Query, p.Query, *dir)
	if err := p.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "agora lambda up:", err)
		return 1
	}
	return 0
}

func lambdaSend(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora lambda send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap servers (the pipeline's, as `up` printed them)")
	topic := fs.String("topic", "", "the pipeline's input topic (required)")
	files, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if *topic == "" {
		fmt.Fprintln(stderr, "agora lambda send: --topic is required (the pipeline's input.topic)")
		return 2
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.DefaultProduceTopic(*topic))
	if err != nil {
		fmt.Fprintln(stderr, "agora lambda send:", err)
		return 1
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	inputs := []io.Reader{stdin}
	if len(files) > 0 {
		inputs = nil
		for _, name := range files {
			f, err := os.Open(name)
			if err != nil {
				fmt.Fprintln(stderr, "agora lambda send:", err)
				return 1
			}
			defer f.Close()
			inputs = append(inputs, f)
		}
	}
	var sent int
	var batch []*kgo.Record
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return err
		}
		sent += len(batch)
		batch = batch[:0]
		return nil
	}
	for _, in := range inputs {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			batch = append(batch, &kgo.Record{Value: []byte(line)})
			if len(batch) == 1000 {
				if err := flush(); err != nil {
					fmt.Fprintf(stderr, "agora lambda send: after %d events: %v\n", sent, err)
					return 1
				}
			}
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintf(stderr, "agora lambda send: reading events after %d: %v\n", sent, err)
			return 1
		}
	}
	if err := flush(); err != nil {
		fmt.Fprintf(stderr, "agora lambda send: after %d events: %v\n", sent, err)
		return 1
	}
	fmt.Fprintf(stderr, "agora lambda send: %d events sent to %s\n", sent, *topic)
	return 0
}

// lambdaURL is the query API's base URL.
func lambdaURL(api string) string {
	if !strings.Contains(api, "://") {
		api = "http://" + api
	}
	return strings.TrimSuffix(api, "/")
}

// lambdaCall sends one request to the query API and decodes the answer.
func lambdaCall(method, api, path string, out any) error {
	req, err := http.NewRequest(method, lambdaURL(api)+path, nil)
	if err != nil {
		return err
	}
	c := http.Client{Timeout: 2 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("the pipeline's API at %s: %w", api, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}

func lambdaQuery(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora lambda query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", lambdaAPI(), "the pipeline's query API, HOST:PORT (env AGORA_LAMBDA_API)")
	viewName := fs.String("view", "", "the view (required)")
	var keys multiFlag
	fs.Var(&keys, "key", "a key value, once per key field in the view's order")
	from := fs.String("from", "", "start of the range, RFC 3339 or unix seconds (default: the beginning)")
	to := fs.String("to", "", "end of the range, exclusive (default: no end)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *viewName == "" {
		fmt.Fprintln(stderr, "agora lambda query: --view is required")
		return 2
	}
	q := url.Values{"view": {*viewName}, "key": keys}
	if *from != "" {
		q.Set("from", *from)
	}
	if *to != "" {
		q.Set("to", *to)
	}
	var a serve.Answer
	if err := lambdaCall(http.MethodGet, *api, "/v1/query?"+q.Encode(), &a); err != nil {
		fmt.Fprintln(stderr, "agora lambda query:", err)
		return 1
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(a)
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "BUCKET\t%s\n", strings.ToUpper(a.Type))
	for _, p := range a.Points {
		fmt.Fprintf(w, "%s\t%g\n", p.Bucket.UTC().Format(time.RFC3339), p.Value)
	}
	return 0
}

func lambdaStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora lambda status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", lambdaAPI(), "the pipeline's query API, HOST:PORT (env AGORA_LAMBDA_API)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	// framework.Status is pipeline.Status with the tasks of `up --master`.
	var st framework.Status
	if err := lambdaCall(http.MethodGet, *api, "/v1/status", &st); err != nil {
		fmt.Fprintln(stderr, "agora lambda status:", err)
		return 1
	}
	if *asJSON {
		if st.Tasks == nil {
			json.NewEncoder(stdout).Encode(st.Status)
		} else {
			json.NewEncoder(stdout).Encode(st)
		}
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "PIPELINE\t%s\nTOPIC\t%s on %s\nINGESTED\t%d events, %d to the dead-letter topic\nBATCH WATERMARK\t%v\nSPEED AT\t%v\nLAST BATCH\t%s (%d ms) %s\nVIEWS\t%s\n",
		st.Pipeline, st.Topic, strings.Join(st.Brokers, ","), st.Ingest.Appended, st.Ingest.DeadLetter,
		st.BatchWatermark, st.SpeedNext, st.LastBatch.Format(time.RFC3339), st.LastBatchMS, st.LastBatchError, strings.Join(st.Views, ", "))
	for _, ts := range st.Tasks {
		fmt.Fprintf(w, "TASK %s\t%s %s (launches %d) %s\n", strings.ToUpper(ts.Layer), ts.State, ts.TaskID, ts.Launches, ts.Addr)
	}
	if st.SpeedError != "" {
		fmt.Fprintf(w, "SPEED LAYER\tnot answering: %s\n", st.SpeedError)
	}
	if top := st.Topology; top != nil {
		fmt.Fprintf(w, "TOPOLOGY\t%s %s %s on Nimbus %s, %d workers, up %ds %s\n", top.Name, top.Status, top.ID, top.Nimbus, top.Workers, top.UptimeS, top.Error)
	}
	return 0
}

func lambdaBatch(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora lambda batch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", lambdaAPI(), "the pipeline's query API, HOST:PORT (env AGORA_LAMBDA_API)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	var out struct {
		BatchWatermark map[int32]int64 `json:"batch_watermark"`
		Rows           int             `json:"rows"`
	}
	if err := lambdaCall(http.MethodPost, *api, "/v1/batch", &out); err != nil {
		fmt.Fprintln(stderr, "agora lambda batch:", err)
		return 1
	}
	fmt.Fprintf(stdout, "batch view recomputed: watermark %v, %d rows\n", out.BatchWatermark, out.Rows)
	return 0
}

// lambdaDown asks `up` to stop, through its query API, and waits until
// that API is gone: `up` answers, then stops its layers (the framework's
// tasks with --master), keeping the dataset, the broker's log and the
// batch views.
func lambdaDown(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agora lambda down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", lambdaAPI(), "the pipeline's query API, HOST:PORT (env AGORA_LAMBDA_API)")
	wait := fs.Duration("timeout", time.Minute, "how long to wait for the pipeline to stop")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	var d pipeline.Down
	if err := lambdaCall(http.MethodPost, *api, "/v1/down", &d); err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			fmt.Fprintf(stderr, "agora lambda down: no pipeline is running with its query API at %s: nothing to stop\n", *api)
		} else {
			fmt.Fprintln(stderr, "agora lambda down:", err)
		}
		return 1
	}
	c := http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(*wait); ; time.Sleep(100 * time.Millisecond) {
		resp, err := c.Get(lambdaURL(*api) + "/v1/status")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "agora lambda down: pipeline %s still answers at %s after %s\n", d.Pipeline, *api, *wait)
			return 1
		}
	}
	fmt.Fprintf(stdout, "pipeline %s is down; its data stays in %s (`agora lambda up` on it again keeps every answer)\n", d.Pipeline, d.WorkDir)
	return 0
}

// multiFlag collects a flag given several times, in order.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
