package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
	"github.com/agora-cluster/agora/cluster/fetcher"
)

// dockerFetchFlags configure the agent's Docker containerizer and fetcher
// (Mesos's flag names, plus --hdfs_namenode).
type dockerFetchFlags struct {
	dockerSocket      string
	dockerKillOrphans bool
	cacheSize         byteSize
	cacheDir          string
	stallTimeout      time.Duration
	hdfsNamenode      string
}

func (f *dockerFetchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dockerSocket, "docker_socket", docker.DefaultSocket, "the Docker Engine's socket, for --containerizers=mesos,docker")
	fs.BoolVar(&f.dockerKillOrphans, "docker_kill_orphans", true, "remove this agent's Docker containers (labelled with its --work_dir) that it does not recover at start")
	f.cacheSize = fetcher.DefaultCacheSize
	fs.Var(&f.cacheSize, "fetcher_cache_size", "size of the fetcher cache (URIs with cache=true), e.g. 2GB, 512MB; 0 disables it")
	fs.StringVar(&f.cacheDir, "fetcher_cache_dir", "", "directory of the fetcher cache (default WORK_DIR/fetcher-cache); cleared at start")
	fs.DurationVar(&f.stallTimeout, "fetcher_stall_timeout", fetcher.DefaultStallTimeout, "abort a download that delivers no data for this long")
	fs.StringVar(&f.hdfsNamenode, "hdfs_namenode", "", "namenode host:port for hdfs:///path URIs (default: from HADOOP_CONF_DIR)")
}

// apply adds the fetcher and, when containerizers lists docker, the Docker
// containerizer to cfg.
func (f *dockerFetchFlags) apply(cfg *agent.Config, containerizers string, cfs bool, logger *slog.Logger) error {
	dir := f.cacheDir
	if dir == "" {
		dir = cfg.WorkDir + "/fetcher-cache"
	}
	fc, err := fetcher.New(fetcher.Config{
		CacheDir: dir, CacheSize: int64(f.cacheSize), StallTimeout: f.stallTimeout,
		HDFSNamenode: f.hdfsNamenode, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("--fetcher_cache_dir: %w", err)
	}
	cfg.Fetcher = fc
	if !listed(containerizers, "docker") {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := docker.New(ctx, docker.Config{
		Socket: f.dockerSocket, DisableCFSQuota: !cfs, KeepOrphans: !f.dockerKillOrphans, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("--containerizers=%s: %w (is the Docker Engine running? see --docker_socket)", containerizers, err)
	}
	cfg.Docker = d
	return nil
}

// devDocker is the Docker containerizer `agora dev` gives its agents, as
// `agora agent --containerizers=mesos,docker` has, when an Engine answers
// at socket: DOCKER tasks (Marathon's Docker apps) then run in dev as in a
// cluster. It is nil when none answers (or socket is ""), which is no
// error: dev runs without Docker, refusing DOCKER tasks.
func devDocker(socket string, cfs bool, logger *slog.Logger) *docker.Containerizer {
	if socket == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := docker.New(ctx, docker.Config{Socket: socket, DisableCFSQuota: !cfs, Logger: logger})
	if err != nil {
		logger.Info("no Docker Engine answers: the agents run no DOCKER tasks", "docker_socket", socket, "err", err)
		return nil
	}
	return d
}

// devDockerLine is the banner line saying where DOCKER tasks run.
func devDockerLine(socket string) string {
	return fmt.Sprintf("  docker      unix://%s   (tasks and apps of container type DOCKER run in this Docker Engine)", socket)
}

func listed(list, name string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

// byteSize is a size flag in Mesos's Bytes syntax: "2GB", "512MB",
// "64KB", "100B" or a plain number of bytes.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a size such as 2GB, 512MB or a number of bytes", s)
	}
	*b = byteSize(v * float64(mult))
	return nil
}
