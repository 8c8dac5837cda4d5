package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/strata-mq/strata/pkg/client"
)

// groupCmd is `strata group …`: consumer groups (docs/consumer-groups.md).
var groupCmd = &command{summary: "list, describe, reset and delete consumer groups", subs: map[string]*command{
	"list":           groupListCmd,
	"describe":       groupDescribeCmd,
	"reset-offsets":  groupResetCmd,
	"delete":         groupDeleteCmd,
	"delete-offsets": groupDeleteOffsetsCmd,
}}

var groupListCmd = &command{
	summary: "list consumer groups",
	setup: func(fs *flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			groups, err := c.ListGroups(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "GROUP\tSTATE\tMEMBERS\tASSIGNOR\tEPOCH")
			for _, g := range groups {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\n", g.Group, g.State, g.Members, g.Assignor, g.GroupEpoch)
			}
			return w.Flush()
		}
	},
}

var groupDescribeCmd = &command{
	summary: "show a group's members, assignment, committed offsets and lag",
	usage:   "GROUP",
	setup: func(fs *flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "group name"); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			d, err := c.DescribeGroup(ctx, args[0])
			if err == nil && d.State == "Dead" {
				err = fmt.Errorf("consumer group %q does not exist (list groups with: strata group list)", args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Group %s: %s, %d members, assignor %s, epoch %d\n\n", d.Group, d.State, d.Members, d.Assignor, d.GroupEpoch)
			w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "MEMBER\tEPOCH\tCLIENT\tPARTITIONS\tPENDING")
			for _, m := range d.MemberInfo {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", m.MemberID, m.MemberEpoch, m.ClientID, tps(m.Assignment), tps(m.Pending))
			}
			fmt.Fprintln(w)
			fmt.Fprintln(w, "TOPIC\tPARTITION\tMEMBER\tCOMMITTED\tHIGH-WATERMARK\tLAG")
			for _, p := range d.Partitions {
				committed, member := "-", p.MemberID
				if p.Committed >= 0 {
					committed = fmt.Sprint(p.Committed)
				}
				if member == "" {
					member = "-"
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%d\n", p.Topic, p.Partition, member, committed, p.HighWatermark, p.Lag)
			}
			return w.Flush()
		}
	},
}

// tps prints partitions compactly: "orders/0,1,2 events/3".
func tps(ps []client.TopicPartition) string {
	if len(ps) == 0 {
		return "-"
	}
	var parts []string
	for i, p := range ps {
		if i == 0 || ps[i-1].Topic != p.Topic {
			parts = append(parts, fmt.Sprintf("%s/%d", p.Topic, p.Partition))
		} else {
			parts[len(parts)-1] += fmt.Sprintf(",%d", p.Partition)
		}
	}
	return strings.Join(parts, " ")
}

// consumeGroup is `strata consume TOPIC --group G`: the topic's partitions
// are shared with the group's other members, reading starts at the group's
// committed offsets, and exactly the records printed are committed before
// exit — so `-n N` and exit resumes right after those N.
func (a *App) consumeGroup(ctx context.Context, topic, group string, o consumeOpts) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	_, err = c.DescribeTopic(dctx, topic) // an unknown topic fails now, not never
	cancel()
	if err != nil {
		return err
	}
	gc, err := c.NewGroupConsumer(group, client.Subscribe(topic), client.AutoCommitMarks(),
		client.SessionTimeout(o.sessionTimeout), client.GroupClientID("strata-cli"),
		client.GroupConsumerOpts(o.consumerOpts()...))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(a.Stdout)
	n := 0
	var loopErr error
	for loopErr == nil {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, o.timeout)
		}
		recs, err := gc.Poll(pctx)
		cancel()
		printed := 0
		for _, r := range recs {
			if o.max > 0 && n >= o.max {
				break
			}
			if loopErr = o.format(w, r); loopErr != nil {
				break
			}
			n++
			printed++
		}
		if ferr := w.Flush(); ferr != nil && loopErr == nil {
			loopErr = ferr
		}
		// What was printed is what gets committed: mark after the flush.
		if loopErr == nil {
			gc.MarkRecords(recs[:printed]...)
		}
		switch {
		case loopErr != nil:
		case o.max > 0 && n >= o.max, ctx.Err() != nil:
			return gc.Close()
		case errors.Is(err, context.DeadlineExceeded) && o.timeout > 0:
			return gc.Close()
		case err != nil:
			loopErr = err
		}
	}
	return errors.Join(loopErr, gc.Close())
}
