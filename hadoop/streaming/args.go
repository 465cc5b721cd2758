// Package streaming runs one Hadoop Streaming process: the mapper, reducer
// or combiner executable of an attempt. Records go to its stdin as lines,
// its stdout lines are split into key and value at the configured
// separator, its stderr is scanned for reporter:counter and reporter:status
// lines (everything else goes to the attempt's stderr log), and a non-zero
// exit fails the attempt. The job configuration reaches the process as
// environment variables (see Environ).
package streaming

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/agora-cluster/agora/hadoop/conf"
)

// SplitArgs splits a Streaming command into argv as Hadoop's
// PipeMapRed.splitArgs does: on spaces, with single or double quotes
// grouping words (the quotes are removed; there are no escapes). Shell
// syntax such as pipes is not interpreted.
func SplitArgs(cmd string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inArg := false
	var quote byte
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inArg = c, true
		case c == ' ' || c == '\t':
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, cmd)
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out, nil
}

// SplitKeyValue splits an output line into key and value as Streaming's
// TextOutputReader does: the key ends at the keyFields-th separator and the
// value is the rest after it; with fewer separators the whole line is the
// key and the value is empty.
func SplitKeyValue(line, sep []byte, keyFields int) (key, value []byte) {
	if len(sep) == 0 {
		return line, nil
	}
	pos := -1
	from := 0
	for k := 0; k < max(keyFields, 1); k++ {
		i := bytes.Index(line[from:], sep)
		if i < 0 {
			return line, nil
		}
		pos = from + i
		from = pos + len(sep)
	}
	return line[:pos], line[pos+len(sep):]
}

// Environ builds a task's environment the way PipeMapRed does: base (the
// TaskTracker's own environment), then every job property under its
// current and deprecated names with non-alphanumerics replaced by '_'
// (conf.Env), then -cmdenv entries, then TMPDIR. Later entries win.
func Environ(base []string, c conf.Conf, cmdenv []string, tmpdir string) []string {
	env := append([]string(nil), base...)
	env = append(env, c.Env()...)
	env = append(env, cmdenv...)
	if tmpdir != "" {
		env = append(env, "TMPDIR="+tmpdir)
	}
	return env
}
