package flux

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Filter is Flux's variable substitution, applied to the file's text
// before it is read as YAML: `--filter FILE.properties` gives Properties
// for ${key} (and ${key[i]}, the i-th element of a property written as a
// list, ["a", "b"]); `--env-filter` sets Env, so that ${ENV-NAME} is the
// environment variable NAME. As Flux does it, each line gets at most one
// substitution (the last ${...} on it; every occurrence of that same
// variable on the line is replaced), and a variable with no value is
// left as it is. Flux fails on ${key} with no --filter; here it is left.
type Filter struct {
	Properties map[string]string
	Env        bool
	// Getenv looks environment variables up (default os.LookupEnv).
	Getenv func(string) (string, bool)
}

// fluxVariable is Flux's pattern (FluxParser.propertyPattern), whose
// greedy leading .* finds the last ${ of a line.
var fluxVariable = regexp.MustCompile(`.*\$\{(?P<var>ENV-(?P<envVar>.+)|(?P<list>.+)\[(?P<listIndex>\d+)]|.+)}.*`)

// Apply substitutes the variables of data. A ${key[i]} whose property is
// not a list of at least i+1 quoted elements is an error naming the line.
func (f Filter) Apply(data []byte) ([]byte, error) {
	getenv := f.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	lines := strings.SplitAfter(string(data), "\n")
	for i, line := range lines {
		body := strings.TrimRight(line, "\r\n")
		m := fluxVariable.FindStringSubmatch(body)
		if m == nil {
			continue
		}
		group := func(name string) string { return m[fluxVariable.SubexpIndex(name)] }
		variable := group("var")
		var val string
		var ok bool
		switch {
		case group("listIndex") != "":
			var prop string
			if prop, ok = f.Properties[group("list")]; ok {
				var err error
				if val, err = listElement(prop, group("listIndex")); err != nil {
					return nil, fmt.Errorf("line %d: ${%s}: property %q = %s: %w", i+1, variable, group("list"), prop, err)
				}
			}
		case f.Env && group("envVar") != "":
			val, ok = getenv(group("envVar"))
		default:
			val, ok = f.Properties[variable]
		}
		if ok {
			lines[i] = strings.ReplaceAll(body, "${"+variable+"}", val) + line[len(body):]
		}
	}
	return []byte(strings.Join(lines, "")), nil
}

// listElement is element index of a property written as a list, as
// FluxParser.parseListAndExtractElem reads it: the brackets taken off,
// split at commas, the element trimmed and its quotes taken off.
func listElement(prop, index string) (string, error) {
	i, err := strconv.Atoi(index)
	if err != nil {
		return "", err
	}
	if len(prop) < 2 || prop[0] != '[' || prop[len(prop)-1] != ']' {
		return "", fmt.Errorf("not a list [\"a\", \"b\"]")
	}
	elems := strings.Split(prop[1:len(prop)-1], ",")
	if i >= len(elems) {
		return "", fmt.Errorf("no element %d (it has %d)", i, len(elems))
	}
	e := strings.TrimSpace(elems[i])
	if len(e) < 2 {
		return "", fmt.Errorf("element %d is not quoted", i)
	}
	return e[1 : len(e)-1], nil
}

// LoadFiltered is Load with the filter applied to the file first; it
// returns the substituted text too (what a copy of the topology must
// carry).
func LoadFiltered(path, resources string, f Filter) (*Topology, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("flux: %w", err)
	}
	if data, err = f.Apply(data); err != nil {
		return nil, nil, fmt.Errorf("flux %s: %w", path, err)
	}
	t, err := parseFile(path, data, resources)
	return t, data, err
}

// ReadProperties reads a Java properties file (java.util.Properties'
// format): key=value, key: value or key value; # and ! comments; a
// backslash at the end of a line continues it; \t, \n, \r, \f, \uXXXX
// and \x escapes. A later key wins.
func ReadProperties(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("flux filter: %w", err)
	}
	props, err := ParseProperties(data)
	if err != nil {
		return nil, fmt.Errorf("flux filter %s: %w", path, err)
	}
	return props, nil
}

// ParseProperties reads the text of a Java properties file.
func ParseProperties(data []byte) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var logical strings.Builder
	continuing, n := false, 0
	for sc.Scan() {
		n++
		line := strings.TrimLeft(strings.TrimRight(sc.Text(), "\r"), " \t\f")
		if !continuing && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		trailing := len(line) - len(strings.TrimRight(line, `\`))
		if continuing = trailing%2 == 1; continuing {
			line = line[:len(line)-1]
		}
		logical.WriteString(line)
		if continuing {
			continue
		}
		k, v, err := splitProperty(logical.String())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		props[k] = v
		logical.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if continuing {
		k, v, err := splitProperty(logical.String())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		props[k] = v
	}
	return props, nil
}

// splitProperty splits a logical line at the first unescaped =, : or
// white space, and unescapes key and value.
func splitProperty(s string) (string, string, error) {
	end := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if strings.IndexByte("=: \t\f", s[i]) >= 0 {
			end = i
			break
		}
	}
	key, rest := s[:end], s[end:]
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	k, err := unescapeProperty(key)
	if err != nil {
		return "", "", err
	}
	v, err := unescapeProperty(rest)
	return k, v, err
}

func unescapeProperty(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\uxxxx escape in %q", s)
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\uxxxx escape in %q", s)
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+size])
			i += size - 1
		}
	}
	return b.String(), nil
}
