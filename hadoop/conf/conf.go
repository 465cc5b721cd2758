// Package conf is a Hadoop job configuration: the key=value properties a
// MapReduce job carries from submission to every task, under Hadoop's own
// key names. Deprecated (Hadoop 1, "mapred.*") names are accepted wherever a
// key is read or written and are stored under the current name, the way
// Hadoop's Configuration handles its deprecation table; both names reach a
// Streaming task's environment (see Env).
package conf

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Conf maps property names to values. Keys are kept under their current
// name (see Canonical). The zero value is not usable; make one with New or
// a composite literal. A Conf is a plain map, so it encodes to JSON as an
// object and can travel inside a task description.
type Conf map[string]string

// New returns an empty Conf.
func New() Conf { return Conf{} }

// Set stores value under the current name of key.
func (c Conf) Set(key, value string) { c[Canonical(key)] = value }

// SetDefault stores value only if key (under any of its names) is unset.
func (c Conf) SetDefault(key, value string) {
	if !c.IsSet(key) {
		c.Set(key, value)
	}
}

// IsSet reports whether key was set explicitly (not only defaulted).
func (c Conf) IsSet(key string) bool {
	k := Canonical(key)
	if _, ok := c[k]; ok {
		return true
	}
	for _, old := range oldNames[k] {
		if _, ok := c[old]; ok {
			return true
		}
	}
	return false
}

// Get returns the value of key, or Hadoop's default for it, or "".
func (c Conf) Get(key string) string {
	v, _ := c.Lookup(key)
	return v
}

// Lookup returns the value of key, or its default; ok is false when the key
// is neither set nor has a default.
func (c Conf) Lookup(key string) (string, bool) {
	k := Canonical(key)
	if v, ok := c[k]; ok {
		return v, true
	}
	// A map built without Set (a literal, decoded JSON) may hold old names.
	for _, old := range oldNames[k] {
		if v, ok := c[old]; ok {
			return v, true
		}
	}
	v, ok := defaults[k]
	return v, ok
}

// Int returns key as an integer. An unset key without a default gives def.
// Hadoop accepts a "k", "m", "g" (binary) suffix on sizes; so does Int.
func (c Conf) Int(key string, def int64) (int64, error) {
	v, ok := c.Lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := parseSize(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("property %s=%q: not an integer", key, v)
	}
	return n, nil
}

// Bool returns key as a boolean ("true"/"false", any case).
func (c Conf) Bool(key string, def bool) (bool, error) {
	v, ok := c.Lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("property %s=%q: not true or false", key, v)
}

// Float returns key as a floating-point number.
func (c Conf) Float(key string, def float64) (float64, error) {
	v, ok := c.Lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, fmt.Errorf("property %s=%q: not a number", key, v)
	}
	return f, nil
}

// Clone returns an independent copy.
func (c Conf) Clone() Conf { return maps.Clone(c) }

// Keys returns the explicitly set keys in sorted order.
func (c Conf) Keys() []string { return slices.Sorted(maps.Keys(c)) }

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}
