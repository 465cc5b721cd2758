package job

import (
	"fmt"
	"path"

	"github.com/agora-cluster/agora/hadoop/conf"
	"github.com/agora-cluster/agora/hadoop/fs"
)

// Submission is a job as it is submitted: a spec, or a Streaming command
// line with the absolute directory its relative paths are taken from.
type Submission struct {
	Spec *Spec
	Args []string
	Cwd  string
}

// Env is what preparing a submission takes from where it runs.
type Env struct {
	// Resolver gives the file systems for a job's configuration; nil
	// means Resolver.
	Resolver func(conf.Conf) (fs.Resolver, error)
	// LookPath finds programs on PATH; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// Check refuses a configuration for what the caller alone reads in
	// it (the job tracker's settings); nil checks nothing more.
	Check func(conf.Conf) error
}

// Resolver finds file systems with the job's local block size
// (fs.local.block.size) and default file system (fs.defaultFS).
func Resolver(c conf.Conf) (fs.Resolver, error) {
	bs, err := c.Int(conf.LocalBlockSize, 32<<20)
	if err != nil {
		return nil, err
	}
	return fs.ResolverWith(bs, c.Get("fs.defaultFS")), nil
}

// Prepare parses (if needed), validates and plans a submission: the spec
// as given, or the Streaming command line parsed; then Validate, env's
// Check and NewPlan. It lists and samples the input, so it reads files. A
// command line that does not parse returns its ErrUsage or ErrHelp error;
// any other refusal is a *RefusedError. Nothing changes either way.
func Prepare(s Submission, env Env) (Plan, error) {
	var spec Spec
	switch {
	case s.Spec != nil && len(s.Args) > 0:
		return Plan{}, fmt.Errorf("%w: give a spec or a Streaming command line, not both", ErrUsage)
	case s.Spec != nil:
		spec = *s.Spec
		if spec.Conf == nil {
			spec.Conf = conf.New()
		}
	case len(s.Args) > 0:
		if s.Cwd == "" || !path.IsAbs(s.Cwd) {
			return Plan{}, fmt.Errorf("%w: cwd %q: give the absolute directory relative paths are taken from", ErrUsage, s.Cwd)
		}
		var err error
		if spec, err = ParseStreaming(s.Args, s.Cwd); err != nil {
			return Plan{}, err
		}
	default:
		return Plan{}, fmt.Errorf("%w: empty submission: give -input, -output and -mapper", ErrUsage)
	}
	resolverOf := env.Resolver
	if resolverOf == nil {
		resolverOf = Resolver
	}
	resolve, err := resolverOf(spec.Conf)
	if err != nil {
		return Plan{}, &RefusedError{Problems: []string{err.Error()}}
	}
	if err := Validate(spec, resolve, env.LookPath); err != nil {
		return Plan{}, err
	}
	if env.Check != nil {
		if err := env.Check(spec.Conf); err != nil {
			return Plan{}, &RefusedError{Problems: []string{err.Error()}}
		}
	}
	plan, err := NewPlan(spec, resolve)
	if err != nil {
		return Plan{}, &RefusedError{Problems: []string{err.Error()}}
	}
	if len(plan.Splits) == 0 {
		return Plan{}, &RefusedError{Problems: []string{"the input holds no data (every input file is empty)"}}
	}
	return plan, nil
}
