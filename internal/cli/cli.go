// Package cli implements the strata command: a small dispatcher over
// subcommands written with the standard flag package, and the commands
// themselves, built on the Go SDK (pkg/client). Every flag can also be set
// from its STRATA_* environment variable (internal/flagenv).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"

	"google.golang.org/grpc/codes"

	"github.com/strata-mq/strata/internal/flagenv"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/client"
)

// DefaultServer is the proxy address used when neither --server nor
// STRATA_SERVER is given.
const DefaultServer = "127.0.0.1:7070"

// serverUsage describes --server: the SDK spreads requests over every
// proxy given and fails over between them (pkg/client.New).
const serverUsage = "proxy address: host:port (a name may resolve to several proxies) or a comma-separated list of them"

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed
	ExitUsage = 2 // bad command line
	// ExitInterrupted is the exit code after a second SIGINT or SIGTERM,
	// which ends the command at once (128 + SIGINT, as shells report it).
	ExitInterrupted = 130
)

// App is one run of the strata command, with its input and outputs.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// server is the proxy address (--server / STRATA_SERVER).
	server string
	// conn is how to reach the proxy: TLS and token (security.go).
	conn connFlags
	// globalsSet holds the global flags given before the command, which
	// the command's own flag set takes over.
	globalsSet map[string]string
}

// command is a node of the command tree: a leaf with run, or a group with
// subcommands.
type command struct {
	summary string
	// usage is the argument synopsis shown after the command's name.
	usage string
	// setup registers a leaf's flags on fs and returns the function that
	// runs it with the positional arguments, once fs is parsed.
	setup func(fs *flag.FlagSet) runFunc
	// aliases maps a short flag name to the flag it stands for ("n" →
	// "max-messages"), so that the environment never overrides either
	// when one was given.
	aliases map[string]string
	subs    map[string]*command
}

type runFunc func(ctx context.Context, a *App, args []string) error

// commands is the command tree.
func commands() map[string]*command {
	return map[string]*command{
		"topic": {summary: "create, list, describe and delete topics", subs: map[string]*command{
			"create":         topicCreateCmd,
			"alter":          topicAlterCmd,
			"list":           topicListCmd,
			"describe":       topicDescribeCmd,
			"delete":         topicDeleteCmd,
			"delete-records": topicDeleteRecordsCmd,
		}},
		"produce": produceCmd,
		"consume": consumeCmd,
		"group":   groupCmd,
		"cluster": {summary: "show the cluster", subs: map[string]*command{
			"status": clusterStatusCmd,
		}},
		"dev":        devCmd,
		"bench":      benchCmd,
		"broker":     {summary: "drain and undrain brokers", subs: map[string]*command{"drain": brokerDrainCmd, "undrain": brokerUndrainCmd}},
		"acl":        aclCmd,
		"version":    versionCmd,
		"completion": completionCmd,
	}
}

// Main runs the strata command with args (without the program name) and
// returns the process exit code. The first SIGINT or SIGTERM cancels the
// command's context, so that consume, produce and dev stop cleanly; a
// second one exits at once with ExitInterrupted.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	wg.Go(func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "strata: %v again; exiting now\n", sig)
			os.Exit(ExitInterrupted)
		case <-done:
		}
	})
	a := &App{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	return a.Run(ctx, args)
}

// usageError is a bad command line: the command's usage is printed and
// the exit code is ExitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// Run runs the command line args and returns the exit code.
func (a *App) Run(ctx context.Context, args []string) int {
	if len(args) > 0 && args[0] == completeCommand {
		return a.complete(args[1:])
	}
	global := flag.NewFlagSet("strata", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	a.server = DefaultServer
	a.globalFlags(global)
	tree := commands()
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.usage(a.Stdout, nil, "strata", tree)
			return ExitOK
		}
		fmt.Fprintf(a.Stderr, "strata: %v\n", err)
		a.usage(a.Stderr, nil, "strata", tree)
		return ExitUsage
	}
	a.globalsSet = map[string]string{}
	global.Visit(func(f *flag.Flag) { a.globalsSet[f.Name] = f.Value.String() })
	args = global.Args()

	path, cmd, subs := "strata", (*command)(nil), tree
	for cmd == nil || cmd.subs != nil {
		if len(args) == 0 {
			a.usage(a.Stderr, cmd, path, subs) // a command is missing
			return ExitUsage
		}
		if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			a.usage(a.Stdout, cmd, path, subs) // asked for: standard output
			return ExitOK
		}
		next, ok := subs[args[0]]
		if !ok {
			fmt.Fprintf(a.Stderr, "%s: unknown command %q\n", path, args[0])
			a.usage(a.Stderr, cmd, path, subs)
			return ExitUsage
		}
		path, cmd, subs, args = path+" "+args[0], next, next.subs, args[1:]
	}

	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.globalFlags(fs)
	run := cmd.setup(fs)
	flagenv.Usage(fs)
	pos, err := a.parse(fs, cmd.aliases, args)
	if err == nil {
		err = run(ctx, a, pos)
	}
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		a.leafUsage(a.Stdout, path, cmd, fs)
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(a.Stderr, "%s: %v\n", path, err)
		a.leafUsage(a.Stderr, path, cmd, fs)
		return ExitUsage
	default:
		fmt.Fprintf(a.Stderr, "%s: %v\n", path, a.describe(err))
		return ExitError
	}
}

// parse parses flags given anywhere among the positional arguments ("--"
// ends the flags), then sets the flags not given from STRATA_* variables.
func (a *App) parse(fs *flag.FlagSet, aliases map[string]string, args []string) ([]string, error) {
	for name, v := range a.globalsSet {
		_ = fs.Set(name, v)
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// fs.Parse stops at the first non-flag or after "--".
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	set := map[string]*flag.Flag{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = f })
	for short, long := range aliases {
		if f := set[short]; f != nil {
			_ = fs.Set(long, f.Value.String())
		} else if f := set[long]; f != nil {
			_ = fs.Set(short, f.Value.String())
		}
	}
	if err := flagenv.Parse(fs, nil); err != nil {
		return nil, usagef("%v", err)
	}
	return pos, nil
}

// describe adds a hint to well-known errors.
func (a *App) describe(err error) string {
	switch {
	case errors.Is(err, client.ErrUnknownTopic):
		return fmt.Sprintf("%v (list topics with: strata topic list)", err)
	case unreachable(err):
		if hint := a.tlsMismatch(); hint != "" {
			return fmt.Sprintf("%v (%s)", err, hint)
		}
		return fmt.Sprintf("%v (is the server reachable?)", err)
	}
	return err.Error()
}

// unreachable reports whether err is a transport failure — no answer from
// the server at all — rather than an error the server gave a reason for.
func unreachable(err error) bool {
	var ae *apierr.Error
	return errors.As(err, &ae) && ae.Reason == "" && ae.Code == codes.Unavailable
}

// usage prints a command group's usage to w: standard output when help
// was asked for, standard error after a mistake.
func (a *App) usage(w io.Writer, cmd *command, path string, subs map[string]*command) {
	fmt.Fprintf(w, "Usage: %s [--server ADDR] COMMAND ...\n", path)
	if cmd != nil && cmd.summary != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.summary)
	}
	fmt.Fprintf(w, "\nCommands:\n")
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, subs[n].summary)
	}
	fmt.Fprintf(w, "\nGlobal flags (before or after the command):\n")
	fmt.Fprintf(w, "  --server ADDR         %s (env STRATA_SERVER, default %s)\n", serverUsage, DefaultServer)
	fmt.Fprintf(w, "  --token TOKEN         bearer token (env STRATA_TOKEN)\n")
	fmt.Fprintf(w, "  --tls-ca FILE         CA bundle of the proxy's certificate; turns TLS on (env STRATA_TLS_CA)\n")
	fmt.Fprintf(w, "  --tls-cert FILE       client certificate for mutual TLS; turns TLS on (env STRATA_TLS_CERT)\n")
	fmt.Fprintf(w, "  --tls-key FILE        the client certificate's key (env STRATA_TLS_KEY)\n")
	fmt.Fprintf(w, "  --tls-server-name N   name to verify in the proxy's certificate (env STRATA_TLS_SERVER_NAME)\n")
}

func (a *App) leafUsage(w io.Writer, path string, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s [flags] %s\n\n%s\n\nFlags:\n", path, cmd.usage, cmd.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// client connects to the server.
func (a *App) client() (*client.Client, error) {
	return a.newClient() // security.go: TLS and token from the environment
}

// adminClient returns a client for one admin command and a context bounded
// by requestTimeout; done closes both.
func (a *App) adminClient(ctx context.Context) (context.Context, *client.Client, func(), error) {
	c, err := a.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	return ctx, c, func() { cancel(); c.Close() }, nil
}

// exactArgs checks the number of positional arguments.
func exactArgs(args []string, names ...string) error {
	if len(args) < len(names) {
		return usagef("missing %s", names[len(args)])
	}
	if len(args) > len(names) {
		return usagef("unexpected argument %q", args[len(names)])
	}
	return nil
}
