package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

// TestConsumerGroupProcesses runs three `strata consume --group` processes
// over a 12-partition topic while a producer writes, SIGKILLs one of them
// and starts a fourth, and then checks that every acknowledged record was
// printed by some consumer (at least once), and that the group's lag is
// zero once the consumers stopped and committed.
func TestConsumerGroupProcesses(t *testing.T) {
	const (
		topic   = "groups"
		group   = "e2e-group"
		records = 6000
	)
	c := StartCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := c.Client()
	if _, err := cl.CreateTopic(ctx, topic, 12); err != nil {
		t.Fatal(err)
	}
	chk := checker.New()

	consumers := map[string]*testenv.Process{}
	startConsumer := func(name string) {
		p, err := testenv.StartProcess(testenv.ProcessSpec{
			Name: name,
			Path: filepath.Join(c.bin, "strata"),
			Args: []string{"--server", c.ProxyAddr, "consume", topic, "--group", group, "--from-beginning",
				"--session-timeout", "3s", "--format", "REC {{.Partition}} {{.Offset}} {{.Key}} {{.Value}}"},
			LogDir: c.dir,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		consumers[name] = p
	}
	for i := range 3 {
		startConsumer(fmt.Sprintf("consumer-%d", i))
	}

	// The producer writes for the whole run, a little at a time, so that
	// the kill and the join happen while records flow.
	p, err := cl.NewProducer(client.Linger(5 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var (
		wg      sync.WaitGroup
		failed  sync.Map
		halfway = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range records {
			if i == records/2 {
				close(halfway)
			}
			r := &client.Record{Topic: topic, Partition: -1, Key: fmt.Appendf(nil, "k%d", i%100), Value: fmt.Appendf(nil, "v%06d", i)}
			p.Produce(ctx, r, func(r *client.Record, err error) {
				if err != nil {
					failed.Store(string(r.Value), err)
					return
				}
				chk.Acked(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
			})
			if i%200 == 199 {
				time.Sleep(50 * time.Millisecond) // pace: about 4,000 records/s
			}
		}
		if err := p.Flush(ctx); err != nil {
			t.Error(err)
		}
	}()

	<-halfway
	// SIGKILL one member: no leave, no commit. Its partitions move after
	// its 3 s session timeout; records it printed but did not commit are
	// printed again by the next owner.
	consumers["consumer-1"].Kill()
	startConsumer("consumer-3")
	wg.Wait()
	failed.Range(func(k, v any) bool {
		t.Errorf("record %v failed: %v", k, v)
		return false
	})
	acked := chk.AckedCount()

	// Wait until the live consumers have printed every acknowledged record.
	var reads map[[2]int64]checker.Record
	deadline := time.Now().Add(60 * time.Second)
	for {
		reads = readConsumerLogs(t, c.dir, topic)
		if len(reads) >= acked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumers printed %d distinct records, %d were acknowledged", len(reads), acked)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A clean stop commits what was printed and leaves the group.
	for _, name := range []string{"consumer-0", "consumer-2", "consumer-3"} {
		consumers[name].Stop()
	}

	// Every acknowledged record was read: feed the checker each
	// partition's distinct reads in offset order.
	keys := make([][2]int64, 0, len(reads))
	for k := range reads {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]int64) int {
		if a[0] != b[0] {
			return int(a[0] - b[0])
		}
		return int(a[1] - b[1])
	})
	for _, k := range keys {
		chk.Read(reads[k])
	}
	rep := chk.Verify(0)
	t.Logf("checker: %v", rep)
	if !rep.OK() || rep.Acked != records {
		t.Fatalf("checker: %v (want %d acknowledged)", rep, records)
	}

	desc, err := cl.DescribeGroup(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if desc.State != "Empty" || len(desc.Partitions) != 12 {
		t.Fatalf("group after stop: state %s, %d partitions", desc.State, len(desc.Partitions))
	}
	for _, pi := range desc.Partitions {
		if pi.Lag != 0 || pi.Committed != pi.HighWatermark {
			t.Errorf("partition %d: committed %d, high watermark %d, lag %d", pi.Partition, pi.Committed, pi.HighWatermark, pi.Lag)
		}
	}
}

// readConsumerLogs collects the records every consumer process printed,
// by (partition, offset), and logs how many were printed more than once.
func readConsumerLogs(t *testing.T, dir, topic string) map[[2]int64]checker.Record {
	t.Helper()
	out := map[[2]int64]checker.Record{}
	dups := 0
	logs, _ := filepath.Glob(filepath.Join(dir, "consumer-*.log"))
	for _, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 5 || fields[0] != "REC" {
				continue
			}
			part, err1 := strconv.ParseInt(fields[1], 10, 32)
			off, err2 := strconv.ParseInt(fields[2], 10, 64)
			if err1 != nil || err2 != nil {
				continue // a line cut short by SIGKILL
			}
			k := [2]int64{part, off}
			if _, ok := out[k]; ok {
				dups++
			}
			out[k] = checker.Record{Topic: topic, Partition: int32(part), Offset: off, Key: []byte(fields[3]), Value: []byte(fields[4])}
		}
		f.Close()
	}
	if dups > 0 {
		t.Logf("%d records were printed more than once (at-least-once redelivery)", dups)
	}
	return out
}
