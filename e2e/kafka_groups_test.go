package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/pkg/client"
)

// groupReads collects what a consumer group read, by partition and
// offset. A group delivers at least once: after a rebalance a partition's
// new owner starts at the committed offset, so records may be read twice
// and, while one member finishes a poll, out of order across members. The
// reads are therefore kept once each and handed to the checker in offset
// order at the end, which still proves every acknowledged record was read
// at its offset with its value and that the offsets read are dense.
type groupReads struct {
	mu    sync.Mutex                // guards the fields below
	byOff map[string]checker.Record // by "topic/partition/offset"
	dups  int
}

func newGroupReads() *groupReads {
	return &groupReads{byOff: map[string]checker.Record{}}
}

func (g *groupReads) add(r checker.Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
	if _, ok := g.byOff[k]; ok {
		g.dups++
		return
	}
	g.byOff[k] = r
}

func (g *groupReads) unique() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.byOff)
}

// summary lists, per partition, the ranges of offsets read, so a stalled
// run shows whether records are missing at the tail or in a gap.
func (g *groupReads) summary() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	offs := map[string][]int64{}
	for _, r := range g.byOff {
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		offs[k] = append(offs[k], r.Offset)
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(offs)) {
		o := offs[k]
		slices.Sort(o)
		fmt.Fprintf(&b, " %s:", k)
		start := o[0]
		for i := 1; i <= len(o); i++ {
			if i == len(o) || o[i] != o[i-1]+1 {
				fmt.Fprintf(&b, "[%d-%d]", start, o[i-1])
				if i < len(o) {
					start = o[i]
				}
			}
		}
	}
	return b.String()
}

// feed hands every record read to chk, per partition in offset order.
func (g *groupReads) feed(chk *checker.Checker) (dups int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	all := make([]checker.Record, 0, len(g.byOff))
	for _, r := range g.byOff {
		all = append(all, r)
	}
	slices.SortFunc(all, func(a, b checker.Record) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	for _, r := range all {
		chk.Read(r)
	}
	return g.dups
}

// kgoGroupMember is one franz-go group consumer polling in a goroutine
// until stopped.
type kgoGroupMember struct {
	cl   *kgo.Client
	done chan error
	stop context.CancelFunc
}

func startKgoGroupMember(t *testing.T, ctx context.Context, addr, group, topic string, reads *groupReads, opts ...kgo.Opt) *kgoGroupMember {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Commit what was processed: by default kgo commits only what the
		// previous poll returned, so the last poll before leaving would
		// stay uncommitted.
		kgo.AutoCommitMarks(),
		kgo.HeartbeatInterval(300 * time.Millisecond), kgo.AutoCommitInterval(300 * time.Millisecond),
		kgo.SessionTimeout(10 * time.Second), kgo.RebalanceTimeout(20 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	m := &kgoGroupMember{cl: cl, done: make(chan error, 1), stop: stop}
	go func() {
		for pctx.Err() == nil {
			fs := m.cl.PollFetches(pctx)
			var ferr error
			fs.EachError(func(topic string, p int32, err error) {
				if pctx.Err() == nil && ferr == nil {
					ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
				}
			})
			if ferr != nil {
				m.done <- ferr
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				reads.add(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
				m.cl.MarkCommitRecords(r)
			})
			// With kgo.BlockRebalanceOnPoll, partitions are given up
			// (and what was marked committed) only here, between polls.
			m.cl.AllowRebalance()
		}
		m.done <- nil
	}()
	t.Cleanup(func() { m.close(t) })
	return m
}

// close stops polling, then closes the client, which commits what was
// polled and leaves the group. It is safe to call twice.
func (m *kgoGroupMember) close(t *testing.T) {
	if m.cl == nil {
		return
	}
	m.stop()
	if err := <-m.done; err != nil {
		t.Error(err)
	}
	m.cl.Close()
	m.cl = nil
}

// waitReads waits until the group has read want distinct records, failing
// with the count when ctx ends first.
func waitReads(t *testing.T, ctx context.Context, reads *groupReads, want int) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for reads.unique() < want {
		select {
		case <-ctx.Done():
			t.Fatalf("group read %d distinct records, want %d; offsets read per partition: %s", reads.unique(), want, reads.summary())
		case <-tick.C:
		}
	}
}

// TestKafkaClassicGroupCooperativeSticky consumes 100,000 records with a
// franz-go classic consumer group (cooperative-sticky, the client-side
// assignor) while members join and leave: every acknowledged record is
// read at its offset (at least once), and after the members leave, the
// group's committed offsets — in the store gRPC groups use — show zero
// lag in `strata group describe`.
func TestKafkaClassicGroupCooperativeSticky(t *testing.T) {
	kgoGroupRun(t, "kgo-coop", "cooperative-sticky", false, kgo.Balancers(kgo.CooperativeStickyBalancer()))
}

// TestKafkaKIP848Group is the same run with franz-go's KIP-848 consumer
// (ConsumerGroupHeartbeat), which Strata serves with its server-side
// groups: the group must show Strata's sticky assignor, not a classic
// protocol, while it runs.
//
// Its members block rebalances while they handle a poll, so they give a
// partition up only after committing every record they read from it: no
// record may be read twice.
func TestKafkaKIP848Group(t *testing.T) {
	kgoGroupRun(t, "kgo-848", "sticky", true, kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer(), kgo.BlockRebalanceOnPoll())
}

// kgoGroupRun runs groupRun with franz-go members; while they consume,
// Kafka's DescribeGroups must show them too.
func kgoGroupRun(t *testing.T, group, assignor string, noRereads bool, opts ...kgo.Opt) {
	const topic = "kafka-group"
	groupRun(t, groupScenario{
		topic: topic, group: group, assignor: assignor, listDelete: true, noRereads: noRereads,
		join: func(t *testing.T, ctx context.Context, addr string, reads *groupReads) groupMember {
			return startKgoGroupMember(t, ctx, addr, group, topic, reads, opts...)
		},
		during: func(t *testing.T, ctx context.Context, addr string) {
			described, err := kadm.NewClient(kgoClient(t, addr)).DescribeGroups(ctx, group)
			if err == nil {
				err = described[group].Err
			}
			if err != nil || len(described[group].Members) == 0 {
				t.Fatalf("DescribeGroups %s while consuming: %v, %+v", group, err, described[group])
			}
		},
	})
}

// groupMember is one consumer of a groupRun; close commits and leaves.
type groupMember interface{ close(t *testing.T) }

// groupScenario is one client library's part in groupRun.
type groupScenario struct {
	topic, group string
	// assignor is what `strata group describe` must show while it runs.
	assignor string
	// join starts a member of group that reads topic into reads.
	join func(t *testing.T, ctx context.Context, addr string, reads *groupReads) groupMember
	// during, if set, checks more while the first two members consume.
	during func(t *testing.T, ctx context.Context, addr string)
	// listDelete lists and deletes the group with Kafka's admin APIs at
	// the end (checkKadmListDelete).
	listDelete bool
	// noRereads: members commit everything they read before they give a
	// partition up, so, with members joining and leaving gracefully, no
	// record may be read twice.
	noRereads bool
}

// Records of a groupRun: two halves, then rounds of one per key until the
// group shows no lag.
const (
	groupRecords     = 100_000
	groupTailRecords = 1000 // one per key kgoProduceAll uses
	maxTailRounds    = 5
)

// groupRun produces 100,000 records in two halves and consumes them with
// a group whose members join and leave meanwhile (two start, a third
// joins while the second half is produced, then the first leaves: two
// more rebalances with records flowing); the group must describe itself
// with its assignor while it runs, read every acknowledged record, and
// end with zero lag.
//
// Then it produces a record for every key, so that every partition's
// owner reads and commits once more, and repeats that (a bounded number of
// rounds) until the group shows no lag: a client may commit, with a valid
// generation, an offset read just before a rebalance for a partition
// another member now owns (kafka-go's Reader does, even a rebalance later
// when it rejoins late; Kafka accepts it as Strata does), and without
// later commits that older offset would stand as lag. Every round's
// records must be read too.
func groupRun(t *testing.T, s groupScenario) {
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kgoCreateTopic(t, ctx, addr, s.topic, 8)
	chk := checker.New()
	reads := newGroupReads()
	producer := kgoClient(t, addr, kgo.ProducerLinger(5*time.Millisecond))
	kgoProduceAll(t, ctx, producer, chk, s.topic, "first", groupRecords/2)

	a := s.join(t, ctx, addr, reads)
	b := s.join(t, ctx, addr, reads)
	waitReads(t, ctx, reads, groupRecords/8)
	checkGroupAssignor(t, ctx, c, s.group, s.assignor)
	if s.during != nil {
		s.during(t, ctx, addr)
	}
	cm := s.join(t, ctx, addr, reads)
	kgoProduceAll(t, ctx, producer, chk, s.topic, "second", groupRecords/2)
	waitReads(t, ctx, reads, groupRecords*3/4)
	a.close(t)
	waitReads(t, ctx, reads, groupRecords)
	produced := groupRecords
	for round := 1; ; round++ {
		kgoProduceAll(t, ctx, producer, chk, s.topic, fmt.Sprintf("tail%d", round), groupTailRecords)
		produced += groupTailRecords
		waitReads(t, ctx, reads, produced)
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		lag := waitLagZero(t, lctx, c, s.group)
		lcancel()
		if lag == "" {
			break
		}
		if round == maxTailRounds {
			t.Fatalf("group %s still lags after %d rounds of a record per key:%s", s.group, round, lag)
		}
		t.Logf("group %s lags after tail round %d:%s", s.group, round, lag)
	}
	b.close(t)
	cm.close(t)

	dups := reads.feed(chk)
	rep := chk.Verify(0)
	t.Logf("checker: %v; %d records read more than once", rep, dups)
	if !rep.OK() || rep.Acked != produced {
		t.Fatalf("checker: %v (want %d acknowledged)", rep, produced)
	}
	if s.noRereads && dups > 0 {
		t.Errorf("%d records read twice, though every member committed what it read before giving a partition up", dups)
	}
	checkGroupCaughtUp(t, ctx, c, s.group, 8)
	if s.listDelete {
		checkKadmListDelete(t, ctx, kadm.NewClient(kgoClient(t, addr)), c, s.group)
	}
}

// checkGroupAssignor checks that `strata group describe`'s source, the
// gRPC DescribeGroup, shows group's members and assignor.
func checkGroupAssignor(t *testing.T, ctx context.Context, c *Cluster, group, assignor string) {
	t.Helper()
	d, err := c.Client().DescribeGroup(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d.Assignor != assignor || len(d.MemberInfo) == 0 {
		t.Fatalf("group %s while consuming: assignor %q with %d members, want %q", group, d.Assignor, len(d.MemberInfo), assignor)
	}
}

// checkKadmListDelete lists the group through Kafka's ListGroups, deletes
// it with DeleteGroups, and checks that it is gone for the gRPC API too.
func checkKadmListDelete(t *testing.T, ctx context.Context, adm *kadm.Client, c *Cluster, group string) {
	t.Helper()
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed[group]; !ok {
		t.Fatalf("ListGroups does not show %s: %v", group, listed.Groups())
	}
	deleted, err := adm.DeleteGroups(ctx, group)
	if err == nil {
		err = deleted[group].Err
	}
	if err != nil {
		t.Fatalf("DeleteGroups %s: %v", group, err)
	}
	d, err := c.Client().DescribeGroup(ctx, group)
	if err != nil || d.State != "Dead" {
		t.Fatalf("group %s after DeleteGroups: %+v, %v; want Dead", group, d, err)
	}
}

// waitLagZero waits until the group has committed every partition up to
// its high watermark, and returns "" then; when ctx ends first it returns
// each partition's committed offset and high watermark. Having read every
// record is not enough before the members leave: a record read by a
// member whose partition was revoked in the middle of its poll is not
// committed by it, and the partition's new owner reads it again and
// commits it a moment later.
func waitLagZero(t *testing.T, ctx context.Context, c *Cluster, group string) string {
	t.Helper()
	cl := c.Client()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := cl.DescribeGroup(ctx, group)
		if err != nil && ctx.Err() != nil {
			return fmt.Sprintf(" not known: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		lag := int64(0)
		for _, p := range d.Partitions {
			lag += p.Lag
		}
		if lag == 0 && len(d.Partitions) > 0 {
			return ""
		}
		select {
		case <-ctx.Done():
			var parts strings.Builder
			fmt.Fprintf(&parts, " %d records;", lag)
			for _, p := range d.Partitions {
				fmt.Fprintf(&parts, " %s/%d committed %d of %d;", p.Topic, p.Partition, p.Committed, p.HighWatermark)
			}
			return parts.String()
		case <-tick.C:
		}
	}
}

// checkGroupCaughtUp runs `strata group describe` and checks that the
// group is empty and every one of its partitions has zero lag.
func checkGroupCaughtUp(t *testing.T, ctx context.Context, c *Cluster, group string, partitions int) {
	t.Helper()
	d, err := c.Client().DescribeGroup(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != "Empty" || len(d.Partitions) != partitions {
		t.Fatalf("group %s after its members left: state %s, %d partitions, want Empty and %d", group, d.State, len(d.Partitions), partitions)
	}
	for _, p := range d.Partitions {
		if p.Lag != 0 || p.Committed != p.HighWatermark {
			t.Errorf("%s/%d: committed %d, high watermark %d, lag %d", p.Topic, p.Partition, p.Committed, p.HighWatermark, p.Lag)
		}
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "strata"), "--server", c.ProxyAddr, "group", "describe", group)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("strata group describe: %v\n%s", err, out.String())
	}
	lines := 0
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] != "TOPIC" {
			lines++
			if f[5] != "0" {
				t.Errorf("strata group describe shows lag: %s", line)
			}
		}
	}
	if lines != partitions {
		t.Fatalf("strata group describe shows %d partitions, want %d:\n%s", lines, partitions, out.String())
	}
}

// TestKafkaClassicGroupSurvivesCoordinatorFailover kills the coordinator
// leader with SIGKILL while a franz-go classic group consumes: the
// standby takes over the group from etcd at the same generation (no
// rebalance), the members keep heartbeating and committing through the
// proxy, and every acknowledged record is read with the group at zero lag
// at the end.
func TestKafkaClassicGroupSurvivesCoordinatorFailover(t *testing.T) {
	const (
		records = 100_000
		topic   = "kafka-group-failover"
		group   = "kgo-failover"
	)
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2, Coordinators: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kgoCreateTopic(t, ctx, addr, topic, 8)
	chk := checker.New()
	reads := newGroupReads()
	producer := kgoClient(t, addr, kgo.ProducerLinger(5*time.Millisecond))
	kgoProduceAll(t, ctx, producer, chk, topic, "first", records/2)

	// Sessions outlast the election (the coordinator's 5 s etcd lease).
	opts := []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.SessionTimeout(30 * time.Second)}
	a := startKgoGroupMember(t, ctx, addr, group, topic, reads, opts...)
	b := startKgoGroupMember(t, ctx, addr, group, topic, reads, opts...)
	waitReads(t, ctx, reads, records/4)
	stable := waitGroupState(t, ctx, c, group, "Stable")
	c.Coordinators[coordinatorLeader(t, ctx, c)].Kill()
	kgoProduceAll(t, ctx, producer, chk, topic, "second", records/2)
	waitReads(t, ctx, reads, records)
	if lag := waitLagZero(t, ctx, c, group); lag != "" {
		t.Fatalf("group %s still lags:%s", group, lag)
	}
	after := waitGroupState(t, ctx, c, group, "Stable")
	if after.GroupEpoch != stable.GroupEpoch || after.Members != 2 {
		t.Errorf("after failover: generation %d with %d members; before: generation %d", after.GroupEpoch, after.Members, stable.GroupEpoch)
	}
	a.close(t)
	b.close(t)

	dups := reads.feed(chk)
	rep := chk.Verify(0)
	t.Logf("checker: %v; %d records read more than once", rep, dups)
	if !rep.OK() || rep.Acked != records {
		t.Fatalf("checker: %v (want %d acknowledged)", rep, records)
	}
	checkGroupCaughtUp(t, ctx, c, group, 8)
}

// coordinatorLeader returns the index in c.Coordinators of the leader.
func coordinatorLeader(t *testing.T, ctx context.Context, c *Cluster) int {
	t.Helper()
	st, err := c.Client().ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var leader int
	if _, err := fmt.Sscanf(st.CoordinatorLeader, "coordinator-%d", &leader); err != nil {
		t.Fatalf("leader %q: %v", st.CoordinatorLeader, err)
	}
	return leader
}

// waitGroupState waits until the group is in state and returns its
// description.
func waitGroupState(t *testing.T, ctx context.Context, c *Cluster, group, state string) *client.GroupDescription {
	t.Helper()
	cl := c.Client()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := cl.DescribeGroup(ctx, group)
		if err == nil && d.State == state {
			return d
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never %s: %+v, %v", group, state, d, err)
		case <-tick.C:
		}
	}
}
