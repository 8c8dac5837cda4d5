package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// completeCommand is the hidden command the completion scripts call: it
// prints the candidates for the word after its arguments, from the command
// tree itself, so completion never drifts from the commands.
const completeCommand = "__complete"

var completionCmd = &command{
	summary: "print a shell completion script: bash, zsh or fish",
	usage: `SHELL

  bash: source <(strata completion bash)       (or save it under /etc/bash_completion.d/)
  zsh:  source <(strata completion zsh)        (or save it as _strata in a directory on $fpath)
  fish: strata completion fish > ~/.config/fish/completions/strata.fish`,
	setup: func(*flag.FlagSet) runFunc {
		return func(_ context.Context, a *App, args []string) error {
			if err := exactArgs(args, "shell"); err != nil {
				return err
			}
			script, ok := completionScripts[args[0]]
			if !ok {
				return usagef("shell %q: want bash, zsh or fish", args[0])
			}
			_, err := io.WriteString(a.Stdout, script)
			return err
		}
	},
}

var completionScripts = map[string]string{
	"bash": `# strata bash completion
_strata() {
	local cur="${COMP_WORDS[COMP_CWORD]}"
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$(strata ` + completeCommand + ` "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _strata strata
`,
	"zsh": `#compdef strata
# strata zsh completion
_strata() {
	local -a candidates
	candidates=("${(@f)$(strata ` + completeCommand + ` "${(@)words[2,CURRENT-1]}" 2>/dev/null)}")
	compadd -- $candidates
}
if [[ "$funcstack[1]" == "_strata" ]]; then _strata "$@"; else compdef _strata strata; fi
`,
	"fish": `# strata fish completion
complete -c strata -f -a '(strata ` + completeCommand + ` (commandline -opc)[2..-1] 2>/dev/null)'
`,
}

// complete prints, one per line, the words that may follow args: the
// subcommands of the command group args name, or the flags of the command
// (and the global flags).
func (a *App) complete(args []string) int {
	subs := commands()
	var leaf *command
	for _, w := range args {
		if strings.HasPrefix(w, "-") {
			continue
		}
		next, ok := subs[w]
		if !ok {
			break
		}
		if next.subs == nil {
			leaf = next
			break
		}
		subs = next.subs
	}
	fs := flag.NewFlagSet("complete", flag.ContinueOnError)
	a.globalFlags(fs)
	var words []string
	if leaf != nil {
		leaf.setup(fs)
	} else {
		for name := range subs {
			words = append(words, name)
		}
	}
	fs.VisitAll(func(f *flag.Flag) { words = append(words, "--"+f.Name) })
	sort.Strings(words)
	for _, w := range words {
		fmt.Fprintln(a.Stdout, w)
	}
	return ExitOK
}
