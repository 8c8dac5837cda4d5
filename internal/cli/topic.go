package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/meta"
)

// requestTimeout bounds one admin command.
const requestTimeout = 30 * time.Second

var topicCreateCmd = &command{
	summary: "create a topic",
	usage:   "NAME",
	setup: func(fs *flag.FlagSet) runFunc {
		partitions := fs.Int("partitions", 1, "number of partitions")
		topicOpts := topicConfigFlags(fs)
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "topic name"); err != nil {
				return err
			}
			if *partitions < 1 || *partitions > meta.MaxPartitions {
				return usagef("--partitions must be between 1 and %d, got %d", meta.MaxPartitions, *partitions)
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			info, err := c.CreateTopic(ctx, args[0], int32(*partitions), topicOpts()...)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Created topic %q with %d partitions.\n", info.Name, info.Partitions)
			return nil
		}
	},
}

// topicConfigFlags registers the topic settings that create and alter
// share; the returned function gives the options for the flags that were
// set (zero values mean "default" on create and "unchanged" on alter).
func topicConfigFlags(fs *flag.FlagSet) func() []client.TopicOpt {
	retention := fs.Duration("retention", 0, "delete data older than this (0: default/unchanged, negative: keep forever)")
	retentionBytes := fs.Int64("retention-bytes", 0, "delete a partition's oldest data past this size (0: default/unchanged, negative: no limit)")
	maxMessage := fs.Int("max-message-bytes", 0, "largest produce request accepted (0: default/unchanged)")
	cleanup := fs.String("cleanup-policy", "", `"delete" (retention deletes old data) or "compact" (every record is kept) (empty: default/unchanged)`)
	return func() []client.TopicOpt {
		var opts []client.TopicOpt
		if *cleanup != "" {
			opts = append(opts, client.CleanupPolicy(*cleanup))
		}
		if *retention != 0 {
			opts = append(opts, client.Retention(*retention))
		}
		if *retentionBytes != 0 {
			opts = append(opts, client.RetentionBytes(*retentionBytes))
		}
		if *maxMessage > 0 {
			opts = append(opts, client.TopicMaxMessageBytes(int32(min(*maxMessage, 1<<30))))
		}
		return opts
	}
}

var topicAlterCmd = &command{
	summary: "change a topic's settings or add partitions",
	usage:   "NAME",
	setup: func(fs *flag.FlagSet) runFunc {
		topicOpts := topicConfigFlags(fs)
		partitions := fs.Int("partitions", 0, "new partition count: partitions are only added, and keyed records then hash over the new count")
		reset := fs.String("reset", "", "settings to set back to the cluster's defaults, comma-separated: retention, retention-bytes, max-message-bytes, cleanup-policy")
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "topic name"); err != nil {
				return err
			}
			if *partitions < 0 || *partitions > math.MaxInt32 {
				return usagef("--partitions %d: want a partition count", *partitions)
			}
			opts := topicOpts()
			if *partitions != 0 {
				opts = append(opts, client.Partitions(int32(*partitions)))
			}
			if *reset != "" {
				names, err := resetNames(*reset)
				if err != nil {
					return err
				}
				opts = append(opts, client.ResetTopicConfig(names...))
			}
			if len(opts) == 0 {
				return usagef("nothing to change: give --partitions, --retention, --retention-bytes, --max-message-bytes, --cleanup-policy or --reset")
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			info, err := c.AlterTopic(ctx, args[0], opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Altered topic %q: %d partitions, retention %s, retention bytes %d.\n",
				info.Name, info.Partitions, retention(info.Config.Retention), info.Config.RetentionBytes)
			return nil
		}
	},
}

// resetNames turns --reset's flag names into the configs
// client.ResetTopicConfig takes.
func resetNames(list string) ([]string, error) {
	byFlag := map[string]string{"retention": client.ConfigRetention, "retention-bytes": client.ConfigRetentionBytes,
		"max-message-bytes": client.ConfigMaxMessageBytes, "cleanup-policy": client.ConfigCleanupPolicy}
	var out []string
	for _, f := range strings.Split(list, ",") {
		name, ok := byFlag[strings.TrimSpace(f)]
		if !ok {
			return nil, usagef("--reset %q: want a comma-separated list of retention, retention-bytes, max-message-bytes, cleanup-policy", f)
		}
		out = append(out, name)
	}
	return out, nil
}

var topicListCmd = &command{
	summary: "list topics",
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			topics, err := c.ListTopics(ctx)
			if err != nil {
				return err
			}
			sort.Slice(topics, func(i, j int) bool { return topics[i].Name < topics[j].Name })
			w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tPARTITIONS\tRETENTION\tRETENTION-BYTES\tMAX-MESSAGE-BYTES")
			for _, t := range topics {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", t.Name, t.Partitions, retention(t.Config.Retention),
					retentionBytes(t.Config.RetentionBytes), maxMessageBytes(t.Config.MaxMessageBytes))
			}
			return w.Flush()
		}
	},
}

func retentionBytes(n int64) string {
	switch {
	case n < 0:
		return "unlimited"
	case n == 0:
		return "default"
	}
	return fmt.Sprint(n)
}

// maxMessageBytes shows a topic's max message bytes; 0 leaves the limit to
// the brokers' --max-request-bytes.
func maxMessageBytes(n int32) string {
	if n <= 0 {
		return "broker default"
	}
	return fmt.Sprint(n)
}

func retention(d time.Duration) string {
	switch {
	case d < 0:
		return "forever"
	case d == 0:
		return "default"
	}
	return d.String()
}

var topicDescribeCmd = &command{
	summary: "show a topic and the state of its partitions",
	usage:   "NAME",
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "topic name"); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			t, err := c.DescribeTopic(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Topic:             %s\nID:                %s\nPartitions:        %d\nRetention:         %s\n",
				t.Name, t.ID, t.Partitions, retention(t.Config.Retention))
			fmt.Fprintf(a.Stdout, "Retention bytes:   %s\nMax message bytes: %s\nCleanup policy:    %s\n",
				retentionBytes(t.Config.RetentionBytes), maxMessageBytes(t.Config.MaxMessageBytes), cmp.Or(t.Config.CleanupPolicy, "delete"))
			if !t.CreatedAt.IsZero() {
				fmt.Fprintf(a.Stdout, "Created:           %s\n", t.CreatedAt.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(a.Stdout)
			w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PARTITION\tBROKER\tEPOCH\tLOG-START\tHIGH-WATERMARK")
			for _, p := range t.PartitionInfo {
				broker := p.Broker
				if broker == "" {
					broker = "(unassigned)"
				}
				fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%d\n", p.Partition, broker, p.Epoch, p.LogStartOffset, p.HighWatermark)
			}
			return w.Flush()
		}
	},
}

var topicDeleteCmd = &command{
	summary: "delete a topic and its data",
	usage:   "NAME",
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "topic name"); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			if err := c.DeleteTopic(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Deleted topic %q.\n", args[0])
			return nil
		}
	},
}

var clusterStatusCmd = &command{
	summary: "show the coordinator leader, the brokers with their partitions, and unassigned partitions",
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			st, err := c.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Coordinator leader: %s (%s)\n\n", st.CoordinatorLeader, st.CoordinatorAddr)
			w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "BROKER\tADDRESS\tZONE\tBYTES-IN/S\tDRAINING\tPARTITIONS")
			for _, b := range st.Brokers {
				fmt.Fprintf(w, "%s\t%s\t%s\t%.0f\t%v\t%d %s\n", b.ID, b.Addr, b.Zone, b.BytesInPerSec, b.Draining, len(b.Partitions), refs(b.Partitions))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, b := range st.Brokers {
				if b.LastStorageError != "" {
					fmt.Fprintf(a.Stdout, "\nBroker %s last storage error (%s): %s\n", b.ID, b.LastStorageErrorAt.UTC().Format(time.RFC3339), b.LastStorageError)
				}
			}
			fmt.Fprintf(a.Stdout, "\nUnassigned partitions: %d %s\n", len(st.Unassigned), refs(st.Unassigned))
			return nil
		}
	},
}

// refs formats partitions as "topic/partition@epoch …", sorted.
func refs(ps []client.PartitionRef) string {
	ps = append([]client.PartitionRef(nil), ps...)
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Topic != ps[j].Topic {
			return ps[i].Topic < ps[j].Topic
		}
		return ps[i].Partition < ps[j].Partition
	})
	s := ""
	for i, p := range ps {
		if i == 0 {
			s = "["
		} else {
			s += " "
		}
		s += fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.Epoch)
	}
	if s != "" {
		s += "]"
	}
	return s
}
