package plan

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ParseYAML reads the flat storm.yaml Storm and mesos/storm use: "key:
// value" lines, and lists either in flow style ([a, b]) or as indented
// "- item" lines under "key:". A list comes back as a JSON list, every
// other value as written. Comments and blank lines are skipped; anything
// else (a nested map, a line that is not "key: value") is an error
// naming its line.
func ParseYAML(data []byte) (map[string]string, error) {
	out := map[string]string{}
	var listKey string
	var items []string
	flush := func() {
		if listKey != "" {
			b, _ := json.Marshal(items)
			out[listKey] = string(b)
		}
		listKey, items = "", nil
	}
	for i, raw := range strings.Split(string(data), "\n") {
		line := stripComment(raw)
		if strings.TrimSpace(line) == "" || strings.TrimSpace(line) == "---" {
			continue
		}
		indented := line[0] == ' ' || line[0] == '\t'
		t := strings.TrimSpace(line)
		if indented || strings.HasPrefix(t, "- ") || t == "-" {
			if listKey == "" || !strings.HasPrefix(t, "-") {
				return nil, fmt.Errorf("storm.yaml line %d: %q: only flat keys and lists are read (no nested maps)", i+1, strings.TrimSpace(raw))
			}
			items = append(items, unquote(strings.TrimSpace(strings.TrimPrefix(t, "-"))))
			continue
		}
		flush()
		k, v, ok := strings.Cut(t, ":")
		k, v = strings.TrimSpace(unquote(k)), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("storm.yaml line %d: %q is not key: value", i+1, strings.TrimSpace(raw))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("storm.yaml line %d: %s is given twice", i+1, k)
		}
		if v == "" {
			listKey = k
			continue
		}
		out[k] = v
	}
	flush()
	return out, nil
}

// stripComment drops a # comment that is not inside quotes.
func stripComment(line string) string {
	var quote byte
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return strings.TrimRight(line[:i], " \t")
		}
	}
	return strings.TrimRight(line, " \t\r")
}
