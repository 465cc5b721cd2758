package dist

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed all:descriptions
var descriptions embed.FS

// Dist is one known distribution: an engine's name and a pinned version.
type Dist struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Summary says what the home holds and what runs from it.
	Summary string `json:"summary"`
	// Default marks the version NAME alone installs.
	Default bool `json:"default,omitempty"`
	// Extract are directories the home needs unpacked from its jars.
	Extract []Extract `json:"-"`
}

// Extract unpacks the entries of a jar under a prefix into a directory of
// the home, keeping their paths (e.g. Hadoop 1's webapps/, which its Jetty
// cannot serve from inside the jar).
type Extract struct {
	Jar    string // path in the home, e.g. lib/hadoop-core-1.2.1.jar
	Prefix string // entries under it, e.g. webapps/
	Into   string // directory in the home, e.g. share/web
}

// String is NAME@VERSION.
func (d Dist) String() string { return d.Name + "@" + d.Version }

// Dir is the home's directory name in the cache: NAME-VERSION.
func (d Dist) Dir() string { return d.Name + "-" + d.Version }

// known are the distributions this binary can install; each has a
// description under descriptions/NAME/VERSION.
var known = []Dist{
	{Name: "hadoop", Version: "1.2.1", Default: true,
		Summary: "Hadoop 1.x MRv1: JobTracker, TaskTracker, Streaming (bin/hadoop jobtracker|tasktracker|jar|fs)",
		Extract: []Extract{{Jar: "lib/hadoop-core-1.2.1.jar", Prefix: "webapps/", Into: "share/web"}}},
	{Name: "hdfs", Version: "3.5.0", Default: true,
		Summary: "HDFS: NameNode, DataNode and the shell (bin/hdfs namenode|datanode|dfs|dfsadmin)"},
	{Name: "storm", Version: "2.8.3", Default: true,
		Summary: "Apache Storm: Nimbus, supervisor and its workers, multilang (bin/storm nimbus|supervisor)"},
	{Name: "spark", Version: "3.5.9", Default: true,
		Summary: "Apache Spark 3.5 (Scala 2.13): spark-submit, drivers and executors, Spark SQL (bin/spark-submit|spark-class)"},
	{Name: "cassandra", Version: "5.0.9", Default: true,
		Summary: "Apache Cassandra 5.0 on Java 17: the daemon and nodetool (bin/cassandra|nodetool)"},
	{Name: "kafka", Version: "4.4.0", Default: true,
		Summary: "Apache Kafka 4.4: a KRaft broker and controller, no ZooKeeper (bin/kafka server|format|storage)"},
}

// Known lists the distributions this binary can install, by name and
// version.
func Known() []Dist {
	out := append([]Dist(nil), known...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Resolve finds the distribution spec names: NAME (its default version) or
// NAME@VERSION. An unknown name or version is an error listing what is
// known.
func Resolve(spec string) (Dist, error) {
	name, version, _ := strings.Cut(strings.TrimSpace(spec), "@")
	if name == "" {
		return Dist{}, fmt.Errorf("no distribution named: give NAME or NAME@VERSION (known: %s)", knownList())
	}
	var versions []string
	for _, d := range Known() {
		if d.Name != name {
			continue
		}
		versions = append(versions, d.Version)
		if d.Version == version || (version == "" && d.Default) {
			return d, nil
		}
	}
	if versions == nil {
		return Dist{}, fmt.Errorf("unknown distribution %q (known: %s)", name, knownList())
	}
	return Dist{}, fmt.Errorf("unknown version %q of %s (known: %s)", version, name, strings.Join(versions, ", "))
}

func knownList() string {
	var s []string
	for _, d := range Known() {
		s = append(s, d.String())
	}
	return strings.Join(s, ", ")
}

// description is d's embedded description: the POM and the home's files.
// from replaces the embedded descriptions when it is not nil.
func (d Dist) description(from fs.FS) (fs.FS, error) {
	if from == nil {
		from = descriptions
	}
	sub, err := fs.Sub(from, "descriptions/"+d.Name+"/"+d.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	if _, err := fs.Stat(sub, "pom.xml"); err != nil {
		return nil, fmt.Errorf("%s: its description has no pom.xml: %w", d, err)
	}
	return sub, nil
}

// DefaultDir is the cache of homes: $AGORA_DIST_DIR, else
// ~/.cache/agora/dist ($XDG_CACHE_HOME/agora/dist when that is set).
func DefaultDir() string {
	if d := os.Getenv("AGORA_DIST_DIR"); d != "" {
		return d
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "agora", "dist")
	}
	return filepath.Join(os.TempDir(), "agora-dist")
}
