package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

// TestAddPartitions adds partitions to a topic that two consumer groups
// read — franz-go's classic group (its leader assigns) and its KIP-848
// group (the coordinator assigns) — with `strata topic alter --partitions`
// on real processes. The brokers take the new partitions, producers of
// both protocols write to them once their metadata is refreshed (no
// restart), and each group reads every acknowledged record, the new
// partitions' included, at its offset (checker) and commits to the end.
func TestAddPartitions(t *testing.T) {
	const topic = "grow"
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kgoCreateTopic(t, ctx, addr, topic, 2)
	chk := checker.New()
	fresh := []kgo.Opt{kgo.MetadataMinAge(250 * time.Millisecond), kgo.MetadataMaxAge(time.Second)}
	type group struct {
		name  string
		reads *groupReads
		m     *kgoGroupMember
	}
	groups := []*group{{name: "grow-classic"}, {name: "grow-848"}}
	for _, g := range groups {
		g.reads = newGroupReads()
		opts := fresh
		if strings.HasSuffix(g.name, "848") {
			opts = append(slices.Clone(opts), kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
		}
		g.m = startKgoGroupMember(t, ctx, addr, g.name, topic, g.reads, opts...)
	}
	kp := kgoClient(t, addr, fresh...)
	kgoProduceAll(t, ctx, kp, chk, topic, "before", 2000)

	bin, err := testenv.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "strata"), "--server", c.ProxyAddr,
		"topic", "alter", topic, "--partitions", "4").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "4 partitions") {
		t.Fatalf("strata topic alter --partitions 4: %v\n%s", err, out)
	}
	admin := c.Client(client.AdminAttempts(20))
	waitStatus(t, ctx, admin, "the new partitions placed", func(st *client.ClusterStatus) bool {
		return len(st.Unassigned) == 0 && placed(st, topic) == 4
	})

	// franz-go refreshes its metadata within MetadataMaxAge; until then
	// its keyed records still hash over two partitions.
	deadline := time.Now().Add(phaseTimeout)
	for i := 0; ; i++ {
		kgoProduceAll(t, ctx, kp, chk, topic, fmt.Sprintf("after-kgo-%d", i), 200)
		if ends := kgoEndOffsets(t, ctx, addr, topic); ends[2] > 0 && ends[3] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("franz-go's producer never wrote to partitions 2 and 3")
		}
	}
	p, err := admin.NewProducer(client.MetadataMaxAge(500 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	sdkProduceUntil(t, ctx, p, chk, topic, func(part int32) bool { return part >= 2 })

	ends := kgoEndOffsets(t, ctx, addr, topic)
	for part := range int32(4) {
		if ends[part] == 0 {
			t.Fatalf("partition %d got no records; end offsets %v", part, ends)
		}
	}
	want := chk.AckedCount()
	for _, g := range groups {
		rctx, rcancel := context.WithTimeout(ctx, phaseTimeout)
		waitReads(t, rctx, g.reads, want)
		rcancel()
		if lag := waitLagZero(t, ctx, c, g.name); lag != "" {
			t.Errorf("group %s lags:%s", g.name, lag)
		}
		g.m.close(t)
		gchk := checker.New()
		for _, r := range chk.AckedRecords() {
			gchk.Acked(r)
		}
		g.reads.feed(gchk)
		if rep := gchk.Verify(0); !rep.OK() || rep.Acked != want {
			t.Errorf("group %s: %v (want %d acknowledged)", g.name, rep, want)
		}
	}
}

// placed counts topic's partitions that a broker owns in st.
func placed(st *client.ClusterStatus, topic string) int {
	n := 0
	for _, b := range st.Brokers {
		for _, p := range b.Partitions {
			if p.Topic == topic {
				n++
			}
		}
	}
	return n
}

// sdkProduceUntil produces keyless records one at a time with p, recording
// each acknowledgement in chk, until one lands on a partition done
// accepts (the producer has refreshed its partition count), at most for
// phaseTimeout.
func sdkProduceUntil(t *testing.T, ctx context.Context, p *client.Producer, chk *checker.Checker, topic string, done func(int32) bool) {
	t.Helper()
	deadline := time.Now().Add(phaseTimeout)
	for i := 0; ; i++ {
		r := &client.Record{Topic: topic, Value: []byte("sdk-" + time.Now().Format(time.RFC3339Nano) + "-" + pad)}
		if err := p.ProduceSync(ctx, r); err != nil {
			t.Fatalf("SDK produce %d: %v", i, err)
		}
		chk.Acked(checker.Record{Topic: topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value})
		if done(r.Partition) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d records the SDK producer still writes only to partitions below 2", i+1)
		}
	}
}
