package job

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/streaming"
)

// ErrHelp is returned by ParseStreaming for -help and -info.
var ErrHelp = errors.New("help requested")

// ErrUsage marks command-line mistakes (unknown options, missing values).
var ErrUsage = errors.New("bad streaming command line")

// StreamingUsage describes the options ParseStreaming accepts.
const StreamingUsage = `Usage: agora hadoop streaming [options]
  -input <path>          input file, directory or glob (repeatable, or comma-separated)
  -output <path>         output directory; must not exist
  -mapper <cmd|class>    mapper executable, or org.apache.hadoop.mapred.lib.IdentityMapper
  -reducer <cmd|class>   reducer executable, IdentityReducer (default), or NONE for map-only
  -combiner <cmd>        combiner executable (same protocol as the reducer)
  -file <file>           ship a file into the task's working directory (repeatable);
                         a relative program path such as ./mapper.sh is shipped too
  -files <f1,f2,...>     ship files (generic option)
  -numReduceTasks <n>    number of reducers (0 = map-only)
  -inputformat <class>   TextInputFormat (default), KeyValueTextInputFormat, TeraInputFormat
  -outputformat <class>  TextOutputFormat (default), TeraOutputFormat
  -partitioner <class>   HashPartitioner (default), TotalOrderPartitioner
  -cmdenv <name=value>   environment variable for the tasks (repeatable)
  -D <key=value>         job property (repeatable); -jobconf is the old spelling
  -conf <file.xml>       job properties from a Hadoop configuration file
  -verbose               more output
  -help, -info           this text`

// unsupported options get a specific refusal rather than "unknown option".
var unsupported = map[string]string{
	"-archives":           "archives are not supported yet; ship files with -files",
	"-libjars":            "Java jars cannot run here; mappers and reducers must be executables",
	"-io":                 "typed-bytes I/O (-io) is not supported; Streaming's text protocol is",
	"-mapdebug":           "debug scripts (-mapdebug) are not supported",
	"-reducedebug":        "debug scripts (-reducedebug) are not supported",
	"-inputreader":        "-inputreader is not supported",
	"-lazyOutput":         "-lazyOutput is not supported yet",
	"-fs":                 "-fs is not supported; give full URIs in -input and -output",
	"-jt":                 "-jt is not supported; the job runs on the agora cluster",
	"-background":         "-background is not supported",
	"-dfs":                "-dfs is not supported; give full URIs in -input and -output",
	"-additionalconfspec": "-additionalconfspec is not supported; use -conf",
}

// ParseStreaming parses a Hadoop Streaming command line (the arguments
// after "hadoop jar hadoop-streaming.jar") into a Spec. Relative paths are
// taken from cwd. Parsing checks only the command line; Validate checks
// the submission against the file system.
func ParseStreaming(args []string, cwd string) (Spec, error) {
	s := Spec{Conf: conf.New()}
	var inputs []string
	var env []string
	value := func(i *int) (string, error) {
		opt := args[*i]
		if *i+1 >= len(args) {
			return "", fmt.Errorf("%w: option %s needs a value", ErrUsage, opt)
		}
		*i++
		return args[*i], nil
	}
	setProp := func(kv, opt string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("%w: %s %q: want key=value", ErrUsage, opt, kv)
		}
		s.Conf.Set(strings.TrimSpace(k), v)
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		opt := a
		if strings.HasPrefix(a, "--") {
			opt = a[1:] // accept --input as well as -input
		}
		if strings.HasPrefix(opt, "-D") && len(opt) > 2 {
			if err := setProp(opt[2:], "-D"); err != nil {
				return Spec{}, err
			}
			continue
		}
		if why, ok := unsupported[opt]; ok {
			return Spec{}, fmt.Errorf("%w: option %s: %s", ErrUsage, opt, why)
		}
		switch opt {
		case "-help", "-info", "-h":
			return Spec{}, ErrHelp
		case "-verbose":
			s.Conf.Set("stream.verbose", "true")
			continue
		}
		if !strings.HasPrefix(opt, "-") {
			return Spec{}, fmt.Errorf("%w: unexpected argument %q (options start with -; see -help)", ErrUsage, a)
		}
		v, err := value(&i)
		if err != nil {
			if !knownOption(opt) {
				return Spec{}, fmt.Errorf("%w: unknown option %s (see -help)", ErrUsage, a)
			}
			return Spec{}, err
		}
		switch opt {
		case "-input":
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					inputs = append(inputs, absPath(p, cwd))
				}
			}
		case "-output":
			s.Conf.Set(conf.OutputDir, absPath(v, cwd))
		case "-mapper":
			s.Conf.Set(conf.MapCommand, v)
		case "-reducer":
			s.Conf.Set(conf.ReduceCommand, v)
		case "-combiner":
			s.Conf.Set(conf.CombineCommand, v)
		case "-file":
			s.Files = append(s.Files, absPath(v, cwd))
		case "-files":
			for _, f := range strings.Split(v, ",") {
				if f = strings.TrimSpace(f); f != "" {
					s.Files = append(s.Files, absPath(f, cwd))
				}
			}
		case "-numReduceTasks":
			s.Conf.Set(conf.NumReduces, v)
		case "-inputformat":
			s.Conf.Set(conf.InputFormat, v)
		case "-outputformat":
			s.Conf.Set(conf.OutputFormat, v)
		case "-partitioner":
			s.Conf.Set(conf.PartitionerName, v)
		case "-cmdenv":
			if !strings.Contains(v, "=") {
				return Spec{}, fmt.Errorf("%w: -cmdenv %q: want NAME=VALUE", ErrUsage, v)
			}
			env = append(env, v)
		case "-D", "-jobconf":
			if err := setProp(v, opt); err != nil {
				return Spec{}, err
			}
		case "-conf":
			if err := loadXML(s.Conf, absPath(v, cwd)); err != nil {
				return Spec{}, err
			}
		default:
			return Spec{}, fmt.Errorf("%w: unknown option %s (see -help)", ErrUsage, a)
		}
	}
	if len(inputs) > 0 {
		s.Conf.Set(conf.InputDir, strings.Join(inputs, ","))
	}
	if len(env) > 0 {
		s.Conf.Set(conf.AddEnvironment, strings.Join(env, " "))
	}
	if s.Conf.Get(conf.ReduceCommand) == NoReducer {
		s.Conf.Set(conf.NumReduces, "0")
	}
	for _, key := range []string{conf.MapCommand, conf.ReduceCommand, conf.CombineCommand} {
		if cmd, ok := shipLocalProgram(s.Conf.Get(key), cwd, &s.Files); ok {
			s.Conf.Set(key, cmd)
		}
	}
	if len(s.Files) > 0 {
		s.Conf.Set(conf.CacheFiles, strings.Join(s.Files, ","))
	}
	s.Conf.SetDefault(conf.WorkingDir, cwd)
	return s, nil
}

// shipLocalProgram ships a program given as a relative path that exists
// under cwd (such as ./mapper.sh) with the job, as if it had been given
// with -file, and rewrites the command to run the shipped copy from the
// task's directory; Hadoop would only find it there if it was shipped.
func shipLocalProgram(cmd, cwd string, files *[]string) (string, bool) {
	argv, err := streaming.SplitArgs(cmd)
	if err != nil || len(argv) == 0 || filepath.IsAbs(argv[0]) || !strings.Contains(argv[0], "/") {
		return "", false
	}
	trimmed := strings.TrimLeft(cmd, " \t")
	if !strings.HasPrefix(trimmed, argv[0]) {
		return "", false // quoted program name: leave it alone
	}
	local := filepath.Join(cwd, argv[0])
	if fi, err := os.Stat(local); err != nil || fi.IsDir() {
		return "", false
	}
	base := filepath.Base(local)
	for _, f := range *files {
		if filepath.Base(f) == base && f != local {
			return "", false // another file of that name is shipped
		}
	}
	if !slices.Contains(*files, local) {
		*files = append(*files, local)
	}
	return "./" + base + strings.TrimPrefix(trimmed, argv[0]), true
}

func knownOption(opt string) bool {
	switch opt {
	case "-input", "-output", "-mapper", "-reducer", "-combiner", "-file", "-files",
		"-numReduceTasks", "-inputformat", "-outputformat", "-partitioner", "-cmdenv",
		"-D", "-jobconf", "-conf":
		return true
	}
	return false
}

// absPath makes a local relative path absolute against cwd; URIs and
// absolute paths are kept.
func absPath(p, cwd string) string {
	if strings.Contains(p, "://") || strings.HasPrefix(p, "file:") || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(cwd, p)
}

// loadXML reads a Hadoop configuration file (<configuration><property>
// <name/><value/></property>...) into c.
func loadXML(c conf.Conf, path string) error {
	b, err := readConfFile(path)
	if err != nil {
		return fmt.Errorf("%w: -conf: %v", ErrUsage, err)
	}
	var doc struct {
		Properties []struct {
			Name  string `xml:"name"`
			Value string `xml:"value"`
		} `xml:"property"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%w: -conf %s: %v", ErrUsage, path, err)
	}
	for _, p := range doc.Properties {
		if p.Name != "" {
			c.Set(strings.TrimSpace(p.Name), p.Value)
		}
	}
	return nil
}

// maxConfFile bounds a -conf file: Hadoop's own configuration files are
// tens of kilobytes.
const maxConfFile = 16 << 20

// readConfFile reads a -conf file. A submission sent to the framework is
// parsed there, so the path is the submitter's word: only a regular file
// is read (not /dev/zero, a fifo or a terminal, which would never end),
// and at most maxConfFile bytes of it. The open itself must not wait:
// opening a fifo for reading blocks until a writer comes, so it is
// opened non-blocking and judged by what was opened (a symlink to a
// regular file is fine; the check is on the file, not the name).
func readConfFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxConfFile)
	}
	return b, nil
}
