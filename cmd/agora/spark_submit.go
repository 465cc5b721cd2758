package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	sparkclient "github.com/agora-cluster/agora/spark/client"
)

// sparkConf collects repeated --conf key=value flags, as spark-submit's.
type sparkConf map[string]string

func (c sparkConf) String() string { return "" }

func (c sparkConf) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q is not of the form key=value", s)
	}
	c[strings.TrimSpace(k)] = v
	return nil
}

// sparkSubmit submits a driver through Spark's REST submission protocol,
// as spark-submit --deploy-mode cluster does, but with the credentials
// (and CA) a secured dispatcher asks for, which spark-submit cannot send.
func sparkSubmit(args []string, stdout, stderr io.Writer) int {
	var api serviceAPI
	props := sparkConf{}
	fs := sparkFlags("submit", "--class MAIN [flags] APP_JAR_OR_PY [APP_ARGS...]",
		"Submits a driver in cluster mode, as spark-submit --master mesos://DISPATCHER --deploy-mode cluster does,\n"+
			"presenting --principal and --secret_file (or AGORA_PRINCIPAL and AGORA_SECRET) to a dispatcher that asks\n"+
			"for credentials. APP_JAR_OR_PY is a URL (or path) the agents can fetch. Prints the submission ID.", stderr, &api, nil)
	mainClass := fs.String("class", "", "the application's main class (spark-submit's --class)")
	name := fs.String("name", "", "the application's name (spark.app.name; default: the main class)")
	fs.Var(props, "conf", "a Spark property key=value (repeatable), as spark-submit's --conf")
	cores := fs.String("driver-cores", "", "the driver's cores (spark.driver.cores)")
	memory := fs.String("driver-memory", "", "the driver's memory, e.g. 1g (spark.driver.memory)")
	supervise := fs.Bool("supervise", false, "launch the driver again when it fails (spark.driver.supervise)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "agora spark submit: the application (a jar or .py the agents can fetch) is missing")
		return 2
	}
	app := fs.Arg(0)
	isPy := strings.HasSuffix(app, ".py")
	if *mainClass == "" && !isPy {
		fmt.Fprintln(stderr, "agora spark submit: --class is required for a jar")
		return 2
	}
	if isPy && *mainClass == "" {
		*mainClass = "org.apache.spark.deploy.PythonRunner"
	}
	set := func(k, v string) {
		if _, given := props[k]; !given && v != "" {
			props[k] = v
		}
	}
	set("spark.app.name", *name)
	set("spark.app.name", *mainClass)
	set("spark.driver.cores", *cores)
	set("spark.driver.memory", *memory)
	if *supervise {
		set("spark.driver.supervise", "true")
	}
	set("spark.submit.deployMode", "cluster")
	set("spark.master", "mesos://"+strings.TrimPrefix(api.addr, "mesos://"))
	if isPy {
		set("spark.submit.pyFiles", app)
	} else {
		set("spark.jars", app)
	}
	c, err := sparkClient(api)
	if err != nil {
		return sparkFailure(stderr, "submit", sparkError(api, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), sparkRequestTimeout)
	defer cancel()
	id, err := c.Create(ctx, sparkclient.CreateSubmissionRequest{
		AppResource: app, MainClass: *mainClass, AppArgs: append([]string{}, fs.Args()[1:]...),
		SparkProperties: props, EnvironmentVariables: map[string]string{},
	})
	if err != nil {
		return sparkFailure(stderr, "submit", sparkError(api, err))
	}
	fmt.Fprintln(stdout, id)
	return 0
}
