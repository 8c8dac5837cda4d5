package cli

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"

	"github.com/strata-mq/strata/pkg/client"
)

var topicDeleteRecordsCmd = &command{
	summary: "delete a topic's records below an offset (Kafka's DeleteRecords)",
	usage:   "NAME --offset N [--partition P]",
	setup: func(fs *flag.FlagSet) runFunc {
		offset := fs.Int64("offset", -2, "delete the records below this offset (-1: every record written so far)")
		partition := fs.Int("partition", -1, "the partition (-1: every partition of the topic)")
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "topic name"); err != nil {
				return err
			}
			if *offset < client.DeleteToEnd {
				return usagef("--offset is required: the first offset to keep, or -1 to delete every record written so far")
			}
			if *partition < -1 {
				return usagef("--partition must be -1 (every partition) or a partition number, got %d", *partition)
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			before := map[int32]int64{int32(*partition): *offset}
			if *partition == -1 {
				all, err := targetPartitions(ctx, c, resetTarget{topic: args[0]})
				if err != nil {
					return err
				}
				before = map[int32]int64{}
				for _, p := range all {
					before[p] = *offset
				}
			}
			starts, err := c.DeleteRecords(ctx, args[0], before)
			for _, p := range slices.Sorted(maps.Keys(starts)) {
				fmt.Fprintf(a.Stdout, "Partition %d: log start %d.\n", p, starts[p])
			}
			return err
		}
	},
}
