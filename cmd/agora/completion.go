package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func init() {
	register(command{name: "completion", summary: "Print a shell completion script: completion bash|zsh", run: runCompletion})
}

// commandGroups are the commands that dispatch to subcommands of their
// own, by the name they are registered under, so that completion offers
// those too.
func commandGroups() map[string]map[string]command {
	return map[string]map[string]command{
		"app":       appCommands,
		"bench":     benchCommands,
		"cassandra": cassandraCommands,
		"dist":      distCommands,
		"hadoop":    hadoopCommands,
		"hdfs":      hdfsCommands,
		"jobs":      jobsCommands,
		"lambda":    lambdaCommands,
		"spark":     sparkCommands,
		"storm":     stormCommands,
	}
}

// completionFlags are the flags offered after a command: the ones client
// commands share (a command's own are in its --help).
var completionFlags = []string{"--master", "--json", "--principal", "--secret_file", "--help"}

func runCompletion(args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		completionUsage(os.Stdout)
		return 0
	}
	if len(args) != 1 {
		completionUsage(os.Stderr)
		return 2
	}
	switch args[0] {
	case "bash":
		writeBashCompletion(os.Stdout)
	case "zsh":
		writeZshCompletion(os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "agora completion: unknown shell %q (bash or zsh)\n\n", args[0])
		completionUsage(os.Stderr)
		return 2
	}
	return 0
}

func completionUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: agora completion bash|zsh

Prints a script that completes agora's commands, their subcommands and the
shared client flags in bash or zsh.

Example:
  source <(agora completion bash)            # in ~/.bashrc
  agora completion zsh > "${fpath[1]}/_agora"  # zsh, then restart it
`)
}

func writeBashCompletion(w io.Writer) {
	groups := commandGroups()
	fmt.Fprintf(w, "# bash completion for agora: source <(agora completion bash)\n")
	fmt.Fprintf(w, "_agora() {\n")
	fmt.Fprintf(w, "  local cur=${COMP_WORDS[COMP_CWORD]}\n")
	fmt.Fprintf(w, "  if [[ $COMP_CWORD -eq 1 ]]; then\n")
	fmt.Fprintf(w, "    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n", strings.Join(commandNames(commands), " "))
	fmt.Fprintf(w, "  if [[ $COMP_CWORD -eq 2 ]]; then\n    case ${COMP_WORDS[1]} in\n")
	for _, g := range commandNames(commands) {
		if sub, ok := groups[g]; ok {
			fmt.Fprintf(w, "      %s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", g, strings.Join(commandNames(sub), " "))
		}
	}
	fmt.Fprintf(w, "      completion) COMPREPLY=($(compgen -W \"bash zsh\" -- \"$cur\")); return ;;\n")
	fmt.Fprintf(w, "    esac\n  fi\n")
	fmt.Fprintf(w, "  if [[ $cur == -* ]]; then\n    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n", strings.Join(completionFlags, " "))
	fmt.Fprintf(w, "  COMPREPLY=($(compgen -f -- \"$cur\"))\n}\n")
	fmt.Fprintf(w, "complete -F _agora agora\n")
}

// zshDescribed is cmds as zsh _describe entries, 'name:summary'.
func zshDescribed(cmds map[string]command) string {
	var parts []string
	for _, n := range commandNames(cmds) {
		d := strings.ReplaceAll(cmds[n].summary, ":", `\:`)
		parts = append(parts, zshQuote(n+":"+d))
	}
	return strings.Join(parts, " ")
}

// zshQuote single-quotes s for zsh.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func writeZshCompletion(w io.Writer) {
	groups := commandGroups()
	fmt.Fprintf(w, "#compdef agora\n# zsh completion for agora: agora completion zsh > \"${fpath[1]}/_agora\"\n")
	fmt.Fprintf(w, "_agora() {\n  local -a cmds subs\n")
	fmt.Fprintf(w, "  cmds=(%s)\n", zshDescribed(commands))
	fmt.Fprintf(w, "  if (( CURRENT == 2 )); then\n    _describe 'agora command' cmds\n    return\n  fi\n")
	fmt.Fprintf(w, "  if (( CURRENT == 3 )); then\n    case $words[2] in\n")
	for _, g := range commandNames(commands) {
		if sub, ok := groups[g]; ok {
			fmt.Fprintf(w, "      %s) subs=(%s); _describe 'agora %s command' subs; return ;;\n", g, zshDescribed(sub), g)
		}
	}
	fmt.Fprintf(w, "      completion) subs=(bash zsh); _describe 'shell' subs; return ;;\n")
	fmt.Fprintf(w, "    esac\n  fi\n")
	fmt.Fprintf(w, "  if [[ $PREFIX == -* ]]; then\n    compadd -- %s\n    return\n  fi\n", strings.Join(completionFlags, " "))
	fmt.Fprintf(w, "  _files\n}\n")
	fmt.Fprintf(w, "if [[ $funcstack[1] == _agora ]]; then\n  _agora \"$@\"\nelse\n  compdef _agora agora\nfi\n")
}
