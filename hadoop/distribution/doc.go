// Package distribution runs a real Hadoop 1.x (MRv1) distribution's
// TaskTrackers on the cluster, the way mesos/hadoop does (issue 5, item 4,
// "distribution mode"): a small Mesos framework, built on the scheduler
// SDK only, takes offers, sizes one TaskTracker per agent from each offer
// with mesos/hadoop's formulas (hadoop/framework's Sizing), takes two ports
// from the offer's ranges for the tracker's HTTP and report addresses, and
// launches `bin/hadoop tasktracker` from a tarball the agent fetches and
// unpacks (mapred.mesos.executor.uri) or from a directory installed on
// every agent (mapred.mesos.executor.directory). The JobTracker runs
// elsewhere (mapred.job.tracker); the trackers register with it as usual.
//
// The TaskTracker gets a mapred-site.xml generated for its offer: the two
// ports, its map and reduce slots, mapred.local.dir in the sandbox, the
// child JVM heap, mapred.job.tracker and every property given to the
// framework. Its JVM heap comes from HADOOP_OPTS, computed from the
// tracker's memory share as mesos/hadoop does.
//
// How the configuration reaches the sandbox. mesos/hadoop serializes the
// JobTracker's configuration into TaskInfo.data for its Java executor
// (org.apache.hadoop.mapred.MesosExecutor), which needs mesos/hadoop's jar
// in the distribution. agora ships no Java, so a tracker is a plain command
// task instead: the generated mapred-site.xml travels, verbatim, in the
// task's environment (AGORA_HADOOP_MAPRED_SITE), and the task's shell
// command copies the distribution's conf/ into the sandbox (so core-site.xml,
// hadoop-env.sh and log4j.properties still apply), writes the variable's
// value over mapred-site.xml there, points HADOOP_CONF_DIR at that copy and
// execs the TaskTracker. An environment value needs no shell quoting at
// all, so any property value survives unchanged. The sandbox's path is
// only known on the agent: the generated file names it with the
// placeholder @MESOS_SANDBOX@, which the command replaces (with plain
// POSIX parameter expansion, no sed) before writing the file; property
// values given to the framework may use the placeholder too.
package distribution
