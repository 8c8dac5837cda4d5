package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/strata-mq/strata/pkg/client"
)

var brokerDrainCmd = &command{
	summary: "hand every partition of a broker to the others gracefully; the broker keeps running but gets nothing new",
	usage:   "ID",
	setup: func(fs *flag.FlagSet) runFunc {
		force := fs.Bool("force", false, "drain even the last live broker that is not draining (takes every partition offline)")
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "broker id"); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			var opts []client.DrainOpt
			if *force {
				opts = append(opts, client.ForceDrain())
			}
			moved, err := c.DrainBroker(ctx, args[0], opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Drained broker %s: handed off %d partitions %s\n", args[0], len(moved), refs(moved))
			return nil
		}
	},
}

var brokerUndrainCmd = &command{
	summary: "let a drained broker take partitions again",
	usage:   "ID",
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "broker id"); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			if err := c.UndrainBroker(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Undrained broker %s: placement gives it partitions again\n", args[0])
			return nil
		}
	},
}
