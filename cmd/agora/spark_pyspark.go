package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/agora-cluster/agora/dist"
	"github.com/agora-cluster/agora/spark/pyspark"
)

// runSparkPySpark adds PySpark to a Spark home (the installed
// distribution's by default) and prints the home: spark-submit then runs
// .py applications, and executors run their Python workers, from it.
func runSparkPySpark(args []string) int {
	fs := flag.NewFlagSet("agora spark pyspark", flag.ContinueOnError)
	home := fs.String("spark_home", "", "the Spark home to add PySpark to\n(default: the `agora dist install spark` home, installed if missing)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: agora spark pyspark [--spark_home DIR]\n\n"+
			"Adds PySpark %s (python/lib/pyspark.zip and py4j %s, from PyPI with pip, pinned and\n"+
			"checked; downloaded once into ~/.cache/agora/pip) to a Spark home and prints the home:\n"+
			"  export SPARK_HOME=$(agora spark pyspark)\n"+
			"  $SPARK_HOME/bin/spark-submit --master mesos://DISPATCHER:7077 --deploy-mode cluster file:/path/app.py\n\n", pyspark.Version, pyspark.Py4JVersion)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	h := *home
	if h == "" {
		d, _ := dist.Resolve("spark")
		var err error
		if h, err = (dist.Installer{Log: os.Stderr}).Install(ctx, d); err != nil {
			fmt.Fprintln(os.Stderr, "agora spark pyspark:", err)
			return 1
		}
	}
	if err := pyspark.Install(ctx, h, pyspark.Config{Log: os.Stderr}); err != nil {
		fmt.Fprintln(os.Stderr, "agora spark pyspark:", err)
		return 1
	}
	fmt.Println(h)
	return 0
}
