package cli

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version. Release builds set it with
//
//	go build -ldflags "-X github.com/strata-mq/strata/internal/cli.Version=v1.2.3" ./cmd/strata
//
// Left empty, `strata version` reports the module version and the VCS
// revision the binary was built from.
var Version = ""

var versionCmd = &command{
	summary: "print the version of this strata binary",
	setup: func(*flag.FlagSet) runFunc {
		return func(_ context.Context, a *App, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			fmt.Fprintln(a.Stdout, versionString())
			return nil
		}
	},
}

// versionString is "strata VERSION (REVISION, GO, OS/ARCH)".
func versionString() string {
	v, rev := Version, "unknown revision"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
				if len(rev) > 12 {
					rev = rev[:12]
				}
			case "vcs.modified":
				if s.Value == "true" {
					rev += "+modified"
				}
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return fmt.Sprintf("strata %s (%s, %s, %s/%s)", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
