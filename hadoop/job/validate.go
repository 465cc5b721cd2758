package job

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/format"
	"github.com/agora-cluster/agora/hadoop/fs"
	"github.com/agora-cluster/agora/hadoop/program"
	"github.com/agora-cluster/agora/hadoop/streaming"
)

// ErrRefused marks a submission refused before anything ran.
var ErrRefused = errors.New("job refused")

// RefusedError lists every reason a submission was refused.
type RefusedError struct {
	Problems []string
}

func (e *RefusedError) Error() string {
	if len(e.Problems) == 1 {
		return "job refused: " + e.Problems[0]
	}
	return "job refused:\n  " + strings.Join(e.Problems, "\n  ")
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Validate checks a submission before anything runs, and reports every
// problem at once: required options, the input paths (they must exist and
// be readable by a supported codec), the output directory (it must not
// exist), the formats and partitioner, numeric properties, the shipped
// files, and the mapper, reducer and combiner programs (each must be a
// built-in, a shipped file, an executable path, or a program on PATH).
// lookPath finds programs on PATH; nil means exec.LookPath.
func Validate(s Spec, resolve fs.Resolver, lookPath func(string) (string, error)) error {
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }

	if in, _ := s.InputFormat(); in == format.RangeInput {
		if _, err := format.RangeSplits(s.Conf); err != nil {
			add("%v", err)
		}
	} else if len(s.Inputs()) == 0 {
		add("required option -input is missing")
	} else if _, err := format.Splits(resolve, s.Conf); err != nil {
		add("%s", strings.TrimPrefix(err.Error(), format.ErrInput.Error()+": "))
	}
	if out := s.Output(); out == "" {
		add("required option -output is missing")
	} else if fsys, path, err := resolve(out); err != nil {
		add("output %s: %v", out, err)
	} else if ok, err := fs.Exists(fsys, path); err != nil {
		add("output %s: %v", out, err)
	} else if ok {
		add("output directory %s already exists", out)
	}
	if _, err := s.InputFormat(); err != nil {
		add("%v", err)
	}
	if _, err := s.OutputFormat(); err != nil {
		add("%v", err)
	}
	if _, err := s.PartitionerName(); err != nil {
		add("%v", err)
	}
	if _, err := s.NumReduces(); err != nil {
		add("%v", err)
	}
	for _, problem := range checkProperties(s.Conf) {
		add("%s", problem)
	}
	shipped := map[string]bool{}
	for _, f := range s.Files {
		shipped[filepath.Base(f)] = true
		fsys, path, err := resolve(f)
		if err != nil {
			add("file %s: %v", f, err)
			continue
		}
		if fi, err := fsys.Stat(path); err != nil || fi.IsDir() {
			add("file %s does not exist or is not a readable file", f)
		}
	}
	if s.Mapper() == "" {
		add("required option -mapper is missing")
	} else if why := checkProgram(s.Mapper(), s.Conf.Get(conf.WorkingDir), shipped, lookPath); why != "" {
		add("mapper %s", why)
	} else if why := checkSide(s.Mapper(), true); why != "" {
		add("mapper %s", why)
	}
	if r := s.Conf.Get(conf.ReduceCommand); r != "" && r != NoReducer {
		if why := checkProgram(r, s.Conf.Get(conf.WorkingDir), shipped, lookPath); why != "" {
			add("reducer %s", why)
		} else if why := checkSide(r, false); why != "" {
			add("reducer %s", why)
		}
	}
	if c := s.Combiner(); c != "" {
		if Builtin(c) {
			add("combiner %s: only executables can combine", c)
		} else if why := checkProgram(c, s.Conf.Get(conf.WorkingDir), shipped, lookPath); why != "" {
			add("combiner %s", why)
		}
	}
	if len(p) > 0 {
		return &RefusedError{Problems: p}
	}
	return nil
}

// checkSide says what is wrong with a built-in program on the map or the
// reduce side, or "".
func checkSide(cmd string, mapSide bool) string {
	p, ok := program.Lookup(cmd)
	switch {
	case !ok:
		return ""
	case mapSide && p.Map == nil:
		return fmt.Sprintf("%q is a reduce program, not a map program", cmd)
	case !mapSide && p.Reduce == nil:
		return fmt.Sprintf("%q is a map program, not a reduce program", cmd)
	}
	return ""
}

// checkProgram says what is wrong with a mapper/reducer/combiner command,
// or "" when it can run.
func checkProgram(cmd, cwd string, shipped map[string]bool, lookPath func(string) (string, error)) string {
	if Builtin(cmd) {
		return ""
	}
	if strings.HasPrefix(cmd, program.Prefix) {
		return fmt.Sprintf("%q: no such built-in program (built-ins: %s)", cmd, strings.Join(program.Names(), ", "))
	}
	if javaClass(cmd) {
		return fmt.Sprintf("%q: Java classes cannot run here (built-ins: %s, %s); give an executable", cmd, IdentityMapper, IdentityReducer)
	}
	argv, err := streaming.SplitArgs(cmd)
	if err != nil {
		return fmt.Sprintf("%q: %v", cmd, err)
	}
	if len(argv) == 0 {
		return "command is empty"
	}
	prog := argv[0]
	if shipped[filepath.Base(prog)] && !strings.Contains(strings.TrimPrefix(prog, "./"), "/") {
		return "" // shipped files are made executable in the task directory
	}
	if strings.Contains(prog, "/") {
		path := prog
		if !filepath.IsAbs(path) && cwd != "" {
			path = filepath.Join(cwd, path)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Sprintf("%s: not found (ship it with -file, or give a path that exists)", prog)
		}
		if fi.IsDir() {
			return fmt.Sprintf("%s: is a directory", prog)
		}
		if fi.Mode().Perm()&0o111 == 0 {
			return fmt.Sprintf("%s: is not executable (mode %v); chmod +x it or ship it with -file", prog, fi.Mode().Perm())
		}
		return ""
	}
	if _, err := lookPath(prog); err != nil {
		return fmt.Sprintf("%q: not found on PATH nor among the shipped files (-file)", prog)
	}
	return ""
}

// checkProperties parses the numeric and boolean properties the engine
// reads, and refuses features it does not have.
func checkProperties(c conf.Conf) []string {
	var p []string
	ints := []struct {
		key string
		min int64
	}{
		{conf.NumMaps, 1}, {conf.MapMaxAttempts, 1}, {conf.ReduceMaxAttempts, 1},
		{conf.SplitMinSize, 0}, {conf.SplitMaxSize, 1}, {conf.SortMB, 1}, {conf.SortFactor, 2},
		{conf.CombineMinSpill, 0}, {conf.ParallelCopies, 1}, {conf.TaskTimeout, 0},
		{conf.MaxFailuresPerHost, 1}, {conf.MapFailuresPercent, 0}, {conf.ReduceFailuresPct, 0},
		{conf.LocalityDelay, 0}, {conf.SpeculativeLag, 0}, {conf.SpeculativeMinTasks, 0},
		{conf.MapOutputKeyFields, 1}, {conf.ReduceOutKeyFields, 1},
		{conf.TotalOrderSamples, 1}, {conf.TotalOrderSampleSplits, 1}, {conf.LocalBlockSize, 1},
	}
	for _, k := range ints {
		n, err := c.Int(k.key, k.min)
		if err != nil {
			p = append(p, err.Error())
		} else if n < k.min {
			p = append(p, fmt.Sprintf("property %s=%d: must be at least %d", k.key, n, k.min))
		}
	}
	if n, err := c.Int(conf.SortMB, 100); err == nil && n > 2047 {
		p = append(p, fmt.Sprintf("property %s=%d: must be below 2048", conf.SortMB, n))
	}
	for _, k := range []string{conf.SlowStart, conf.SpillPercent, conf.SlowTaskThreshold, conf.SpeculativeCap} {
		if _, err := c.Float(k, 0); err != nil {
			p = append(p, err.Error())
		}
	}
	for _, k := range []string{conf.MapSpeculative, conf.ReduceSpeculative, conf.InputRecursive,
		conf.MarkSuccess, conf.NonZeroExitFails, conf.OutputCompress, conf.MapInputIgnoreKey} {
		if _, err := c.Bool(k, false); err != nil {
			p = append(p, err.Error())
		}
	}
	if ok, _ := c.Bool(conf.OutputCompress, false); ok {
		p = append(p, fmt.Sprintf("compressed output (%s) is not supported yet", conf.OutputCompress))
	}
	if v := c.Get("mapreduce.job.output.key.comparator.class"); v != "" {
		p = append(p, fmt.Sprintf("custom key comparators (%s=%s) are not supported yet; keys sort as bytes", "mapreduce.job.output.key.comparator.class", v))
	}
	return p
}
