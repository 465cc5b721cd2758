package conf

import (
	"maps"
	"slices"
	"strconv"
)

// EnvName makes a property name safe as an environment variable name the
// way Hadoop Streaming does: every character outside [0-9A-Za-z] becomes
// '_' (so mapreduce.map.input.file becomes mapreduce_map_input_file).
func EnvName(key string) string {
	b := []byte(key)
	for i, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Env renders the configuration as NAME=value environment entries, as
// Hadoop Streaming's PipeMapRed.addJobConfToEnvironment does: every set
// property and every known default, each under its current and its
// deprecated names, with names made safe by EnvName and values cut to
// stream.jobconf.truncate.limit characters when that is not negative. The
// entries are sorted by name.
func (c Conf) Env() []string {
	limit := int64(-1)
	if v, ok := c.Lookup(EnvTruncateLimit); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			limit = n
		}
	}
	vars := map[string]string{}
	keys := map[string]bool{}
	for k := range defaults {
		keys[k] = true
	}
	for k := range c {
		keys[k] = true
	}
	for k := range keys {
		v := c.Get(k)
		if limit >= 0 && int64(len(v)) > limit {
			v = v[:limit]
		}
		for _, name := range Names(k) {
			vars[EnvName(name)] = v
		}
	}
	out := make([]string, 0, len(vars))
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, name+"="+vars[name])
	}
	return out
}
