package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/strata-mq/strata/pkg/client"
)

// groupDeleteCmd follows kafka-consumer-groups --delete.
var groupDeleteCmd = &command{
	summary: "delete a consumer group without live members, with its committed offsets",
	usage:   "GROUP",
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "group"); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			if err := c.DeleteGroup(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Deleted group %q.\n", args[0])
			return nil
		}
	},
}

// groupDeleteOffsetsCmd follows kafka-consumer-groups --delete-offsets.
var groupDeleteOffsetsCmd = &command{
	summary: "delete a consumer group's committed offsets of some topics or partitions",
	usage: `GROUP --topic T[:P[,P...]] ...

The group must have no live members.`,
	setup: func(fs *flag.FlagSet) runFunc {
		var targets []resetTarget
		fs.Func("topic", "topic whose offsets go, optionally only some partitions: T, T:P or T:P1,P2 (repeatable; required)", func(s string) error {
			t, err := parseResetTarget(s)
			if err == nil {
				targets = append(targets, t)
			}
			return err
		})
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "group"); err != nil {
				return err
			}
			if len(targets) == 0 {
				return usagef("--topic is required")
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			var parts []client.TopicPartition
			for _, t := range targets {
				ps, err := targetPartitions(ctx, c, t)
				if err != nil {
					return err
				}
				for _, p := range ps {
					parts = append(parts, client.TopicPartition{Topic: t.topic, Partition: p})
				}
			}
			if err := c.DeleteGroupOffsets(ctx, args[0], parts); err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Deleted the committed offsets of %d partitions of group %q.\n", len(parts), args[0])
			return nil
		}
	},
}
