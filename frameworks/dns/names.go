package dns

import (
	"crypto/sha1"
	"encoding/base32"
	"strings"
)

// label turns a task or framework name fragment into one DNS label as
// Mesos-DNS does: lower case, characters outside [a-z0-9-] dropped,
// hyphens trimmed from both ends, at most 63 characters (RFC 1123) or 24
// starting with a letter (RFC 952). It may return "" (no usable label).
func label(s string, rfc952 bool) string {
	max := 63
	if rfc952 {
		max = 24
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r == '-':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if rfc952 && b.Len() == 0 {
				continue // RFC 952: a label starts with a letter
			}
			b.WriteRune(r)
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > max {
		out = strings.TrimRight(out[:max], "-")
	}
	return out
}

// taskLabel is the label of a task name: dots become hyphens first, so a
// Marathon task "web.group" is "web-group".
func taskLabel(name string, rfc952 bool) string {
	return label(strings.ReplaceAll(name, ".", "-"), rfc952)
}

// frameworkLabels is a framework's name as a domain fragment: its dots
// stay, each part becomes a label, empty parts are dropped.
func frameworkLabels(name string, rfc952 bool) string {
	var parts []string
	for _, p := range strings.Split(name, ".") {
		if l := label(p, rfc952); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, ".")
}

const zbase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

var zbase32 = base32.NewEncoding(zbase32Alphabet).WithPadding(base32.NoPadding)

// taskIDHash is Mesos-DNS's per-instance tag: the first 5 characters of
// the z-base-32 SHA-1 of the task ID.
func taskIDHash(id string) string {
	sum := sha1.Sum([]byte(id))
	return zbase32.EncodeToString(sum[:])[:5]
}

// agentIDTail is the last hyphen-separated part of an agent ID ("S1" of
// "…-S1"), as a label.
func agentIDTail(id string) string {
	if i := strings.LastIndex(id, "-"); i >= 0 {
		id = id[i+1:]
	}
	return label(id, false)
}
