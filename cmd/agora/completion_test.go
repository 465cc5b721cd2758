package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every registered command, and every subcommand of a group, appears in
// both scripts, as a whole word.
func TestCompletionNamesEveryCommand(t *testing.T) {
	var bash, zsh bytes.Buffer
	writeBashCompletion(&bash)
	writeZshCompletion(&zsh)
	groups := commandGroups()
	for name, c := range commands {
		if c.hidden {
			continue
		}
		for shell, script := range map[string]string{"bash": bash.String(), "zsh": zsh.String()} {
			if !regexp.MustCompile(`[ "'(]` + regexp.QuoteMeta(name) + `[ "':)]`).MatchString(script) {
				t.Errorf("%s completion lacks command %q", shell, name)
			}
			for sub, sc := range groups[name] {
				if !sc.hidden && !strings.Contains(script, sub) {
					t.Errorf("%s completion lacks %s %s", shell, name, sub)
				}
			}
		}
	}
	for g := range groups {
		if _, ok := commands[g]; !ok {
			t.Errorf("completion's group %q is not a registered command", g)
		}
	}
}

// complete runs the bash script's completion function on words and
// returns what it offers, sorted.
func complete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is not installed")
	}
	path := filepath.Join(t.TempDir(), "agora.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	prog := "source " + path + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=" +
		strconv.Itoa(len(words)-1) + "; _agora; printf '%s\\n' \"${COMPREPLY[@]}\""
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v: %s", err, out)
	}
	got := strings.Fields(string(out))
	sort.Strings(got)
	return got
}

// The bash script completes command names, a group's subcommands, the
// shells of completion itself and the shared flags.
func TestBashCompletionCompletes(t *testing.T) {
	var b bytes.Buffer
	writeBashCompletion(&b)
	script := b.String()
	cases := []struct {
		words []string
		want  string
	}{
		{[]string{"agora", "ag"}, "agent agents"},
		{[]string{"agora", "completion", ""}, "bash zsh"},
		{[]string{"agora", "tasks", "--ma"}, "--master"},
		{[]string{"agora", "storm", ""}, strings.Join(commandNames(stormCommands), " ")},
	}
	for _, c := range cases {
		if got := strings.Join(complete(t, script, c.words...), " "); got != c.want {
			t.Errorf("completing %q: %q, want %q", c.words, got, c.want)
		}
	}
}

// The zsh script is valid zsh.
func TestZshCompletionParses(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Fatal("zsh is not installed: `make test-deps` installs it (Debian package zsh)")
	}
	var b bytes.Buffer
	writeZshCompletion(&b)
	path := filepath.Join(t.TempDir(), "_agora")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "zsh", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v: %s", err, out)
	}
}
