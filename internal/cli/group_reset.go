package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-mq/strata/pkg/client"
)

// groupResetCmd follows kafka-consumer-groups --reset-offsets: it shows
// the plan unless --execute is given.
var groupResetCmd = &command{
	summary: "plan (or, with --execute, apply) new committed offsets for a group without live members",
	usage: `GROUP --topic T[:P[,P...]] ... (--to-earliest | --to-latest | --to-offset N | --to-datetime T | --shift-by N) [--execute]

Without --execute it is a dry run: it prints the offsets it would commit
and changes nothing. The group must exist and have no live members.`,
	setup: func(fs *flag.FlagSet) runFunc {
		var targets []resetTarget
		fs.Func("topic", "topic to reset, optionally only some partitions: T, T:P or T:P1,P2 (repeatable; required)", func(s string) error {
			t, err := parseResetTarget(s)
			if err == nil {
				targets = append(targets, t)
			}
			return err
		})
		var plan resetPlan
		fs.BoolVar(&plan.earliest, "to-earliest", false, "reset to the first readable offset")
		fs.BoolVar(&plan.latest, "to-latest", false, "reset to the high watermark (skip everything)")
		fs.Int64Var(&plan.offset, "to-offset", -1, "reset to this offset (clamped to the readable range)")
		datetime := fs.String("to-datetime", "", "reset to the first record at or after this time (RFC 3339, e.g. 2026-11-26T12:00:00Z)")
		fs.Int64Var(&plan.shift, "shift-by", 0, "move the committed offset by N (negative: back), clamped to the readable range")
		execute := fs.Bool("execute", false, "apply the new offsets (default: dry run)")
		fs.Bool("dry-run", false, "show the new offsets without applying them (the default)")
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "group name"); err != nil {
				return err
			}
			if len(targets) == 0 {
				return usagef("--topic is required")
			}
			if *datetime != "" {
				at, err := time.Parse(time.RFC3339, *datetime)
				if err != nil {
					return usagef("--to-datetime: %v", err)
				}
				plan.at = &at
			}
			shiftSet := false
			fs.Visit(func(f *flag.Flag) { shiftSet = shiftSet || f.Name == "shift-by" })
			if n := plan.count(shiftSet); n != 1 {
				return usagef("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
			}
			return a.resetOffsets(ctx, args[0], targets, plan, *execute)
		}
	},
}

// resetTarget is one --topic: a topic and, optionally, some partitions.
type resetTarget struct {
	topic      string
	partitions []int32 // nil: every partition
}

func parseResetTarget(s string) (resetTarget, error) {
	topic, list, hasParts := strings.Cut(s, ":")
	if topic == "" {
		return resetTarget{}, fmt.Errorf("%q: want TOPIC, TOPIC:P or TOPIC:P1,P2", s)
	}
	t := resetTarget{topic: topic}
	if !hasParts {
		return t, nil
	}
	for _, f := range strings.Split(list, ",") {
		p, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || p < 0 {
			return resetTarget{}, fmt.Errorf("%q: partition %q is not a partition number", s, f)
		}
		t.partitions = append(t.partitions, int32(p))
	}
	return t, nil
}

// resetPlan is how the new offsets are chosen; exactly one is set.
type resetPlan struct {
	earliest, latest bool
	offset           int64 // -1: not set
	at               *time.Time
	shift            int64
}

func (p resetPlan) count(shiftSet bool) int {
	n := 0
	for _, set := range []bool{p.earliest, p.latest, p.offset >= 0, p.at != nil, shiftSet} {
		if set {
			n++
		}
	}
	return n
}

// resetRow is one partition of the plan.
type resetRow struct {
	tp       client.TopicPartition
	current  int64 // -1: nothing committed
	newValue int64
}

func (a *App) resetOffsets(ctx context.Context, group string, targets []resetTarget, plan resetPlan, execute bool) error {
	ctx, c, done, err := a.adminClient(ctx)
	if err != nil {
		return err
	}
	defer done()
	d, err := c.DescribeGroup(ctx, group)
	if err != nil {
		return err
	}
	switch {
	case d.State == "Dead":
		return fmt.Errorf("consumer group %q does not exist; reset-offsets does not create groups (list groups with: strata group list)", group)
	case d.Members > 0:
		return fmt.Errorf("%w: group %q has %d live members (stop its consumers first; see strata group describe %s)", client.ErrGroupNotEmpty, group, d.Members, group)
	}
	committed := map[client.TopicPartition]int64{}
	for _, p := range d.Partitions {
		committed[client.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = p.Committed
	}
	rows, err := planRows(ctx, c, targets, plan, committed)
	if err != nil {
		return err
	}
	if execute {
		offsets := make(map[client.TopicPartition]int64, len(rows))
		for _, r := range rows {
			offsets[r.tp] = r.newValue
		}
		if err := c.ResetGroupOffsets(ctx, group, offsets); err != nil {
			if errors.Is(err, client.ErrGroupNotEmpty) {
				return fmt.Errorf("%w (stop its consumers first; see strata group describe %s)", err, group)
			}
			return err
		}
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET")
	for _, r := range rows {
		cur := "-"
		if r.current >= 0 {
			cur = fmt.Sprint(r.current)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\n", group, r.tp.Topic, r.tp.Partition, cur, r.newValue)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !execute {
		fmt.Fprintln(a.Stderr, "Dry run: nothing was changed. Add --execute to commit these offsets.")
	}
	return nil
}

// targetPartitions returns the partitions t names, or every partition of
// its topic; a partition the topic lacks is an error.
func targetPartitions(ctx context.Context, c *client.Client, t resetTarget) ([]int32, error) {
	info, err := c.DescribeTopic(ctx, t.topic)
	if err != nil {
		return nil, err
	}
	parts := t.partitions
	if parts == nil {
		for p := range info.Partitions {
			parts = append(parts, p)
		}
	}
	for _, p := range parts {
		if p >= info.Partitions {
			return nil, fmt.Errorf("%w: partition %d, topic %q has %d", client.ErrPartitionRange, p, t.topic, info.Partitions)
		}
	}
	return parts, nil
}

// planRows computes the new offset of every targeted partition.
func planRows(ctx context.Context, c *client.Client, targets []resetTarget, plan resetPlan, committed map[client.TopicPartition]int64) ([]resetRow, error) {
	var rows []resetRow
	seen := map[client.TopicPartition]bool{}
	for _, t := range targets {
		parts, err := targetPartitions(ctx, c, t)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			tp := client.TopicPartition{Topic: t.topic, Partition: p}
			if seen[tp] {
				continue
			}
			seen[tp] = true
			cur, ok := committed[tp]
			if !ok {
				cur = -1
			}
			n, err := plan.newOffset(ctx, c, tp, cur)
			if err != nil {
				return nil, err
			}
			rows = append(rows, resetRow{tp: tp, current: cur, newValue: n})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].tp.Topic != rows[j].tp.Topic {
			return rows[i].tp.Topic < rows[j].tp.Topic
		}
		return rows[i].tp.Partition < rows[j].tp.Partition
	})
	return rows, nil
}

// newOffset is the plan's offset for one partition whose committed offset
// is cur (-1: none; a shift then starts from the log start, as a consumer
// without a committed offset would).
func (p resetPlan) newOffset(ctx context.Context, c *client.Client, tp client.TopicPartition, cur int64) (int64, error) {
	spec := client.OffsetEarliest
	switch {
	case p.latest:
		spec = client.OffsetLatest
	case p.at != nil:
		spec = max(p.at.UnixMilli(), 0)
	}
	o, err := c.ListOffsets(ctx, tp.Topic, tp.Partition, spec)
	if err != nil {
		return 0, err
	}
	clamp := func(n int64) int64 { return min(max(n, o.LogStartOffset), o.HighWatermark) }
	switch {
	case p.offset >= 0:
		return clamp(p.offset), nil
	case !p.earliest && !p.latest && p.at == nil: // --shift-by
		from := cur
		if from < 0 {
			from = o.LogStartOffset
		}
		return clamp(from + p.shift), nil
	}
	return o.Offset, nil
}
