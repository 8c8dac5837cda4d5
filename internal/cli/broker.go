package cli

import (
	"context"
	"flag"
	"fmt"
)

var brokerDrainCmd = &command{
	summary: "hand every partition of a broker to the others gracefully; the broker keeps running but gets nothing new",
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
			moved, err := c.DrainBroker(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Drained broker %s: handed off %d partitions %s\n", args[0], len(moved), refs(moved))
			return nil
		}
	},
}
