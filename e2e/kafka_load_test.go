package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/pkg/client"
)

// kafkaLoad is a steady produce load through one Kafka client library (4
// records every 2 ms, partitioned by the client) that remembers each
// record's fate. The client's own code calls send and, for every record,
// done once.
type kafkaLoad struct {
	client string // the library, for messages
	topic  string
	// flush waits until every record sent has had its done call.
	flush func(ctx context.Context) error

	stop, stopped chan struct{}

	mu       sync.Mutex // guards the fields below
	fates    map[string]*fate
	lastAck  time.Time
	produced int
}

// newKafkaLoad is a load of topic through the named client, not started:
// the client's delivery reports may then call done from the start.
func newKafkaLoad(clientName, topic string) *kafkaLoad {
	return &kafkaLoad{client: clientName, topic: topic, stop: make(chan struct{}), stopped: make(chan struct{}), fates: map[string]*fate{}}
}

// start starts sending records through send; flush is what finish waits
// on.
func (l *kafkaLoad) start(send func(v string), flush func(context.Context) error) *kafkaLoad {
	l.flush = flush
	go tickLoad(l.stop, l.stopped, "k", func(v string) {
		l.mu.Lock()
		l.fates[v] = &fate{}
		l.produced++
		l.mu.Unlock()
		send(v)
	})
	return l
}

// startFranzLoad is a kafkaLoad through franz-go.
func startFranzLoad(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) *kafkaLoad {
	t.Helper()
	l := newKafkaLoad("franz-go", topic)
	return l.start(func(v string) {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}, func(r *kgo.Record, err error) {
			l.done(string(r.Value), r.Partition, r.Offset, err)
		})
	}, cl.Flush)
}

// done records the fate of the record whose value is v.
func (l *kafkaLoad) done(v string, partition int32, offset int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fates[v]
	if f == nil || f.done {
		panic(fmt.Sprintf("%s: a second or unknown delivery report for %q", l.client, v))
	}
	f.done, f.err, f.partition, f.offset = true, err, partition, offset
	if err == nil {
		l.lastAck = time.Now()
	}
}

func (l *kafkaLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, f := range l.fates {
		if f.done && f.err == nil {
			n++
		}
	}
	return n
}

// waitRecovered waits for an acknowledgement after at and returns its
// delay.
func (l *kafkaLoad) waitRecovered(t *testing.T, what string, at time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(phaseTimeout)
	for {
		l.mu.Lock()
		last := l.lastAck
		l.mu.Unlock()
		if last.After(at) {
			return last.Sub(at)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s had no acknowledgement within %v", what, l.client, phaseTimeout)
		}
		time.Sleep(10 * time.Millisecond) // polling a local condition
	}
}

// finish stops the load, flushes the client (every record gets its
// report), reads the topic back through the Kafka port and checks the
// records' fates: an acknowledged record is stored once, at its offset;
// no value is stored twice; with allAcked, no record failed. The Kafka
// clients do not say whether a record that failed might have been
// written, so a failed record may be stored, once.
func (l *kafkaLoad) finish(t *testing.T, ctx context.Context, addr string, cl *client.Client, allAcked bool) string {
	t.Helper()
	close(l.stop)
	<-l.stopped
	fctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := l.flush(fctx); err != nil {
		t.Errorf("flushing the %s producer: %v", l.client, err)
	}
	// The checker reads through the Kafka port; the values are counted
	// from a read through the SDK, the same records by the other door.
	chk := checker.New()
	read := kgoConsumeAll(t, ctx, addr, chk, l.topic)
	stored, err := readTopic(ctx, cl, l.topic)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range stored {
		count[string(r.Value)]++
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := tallyFates(l.fates, count, l.topic, chk, func(error) bool { return false })
	rep := chk.Verify(0)
	summary := fmt.Sprintf("produced %d: acknowledged %d, failed %d (first: %v), no report %d; read %d through Kafka, %d through the SDK, values stored twice %d, failed records stored %d; checker: %v",
		l.produced, n.acked, n.failed, n.firstErr, n.pending, read, len(stored), n.storedTwice, n.failedStored, rep)
	if n.storedTwice > 0 || n.pending > 0 || !rep.OK() || (allAcked && n.failed > 0) {
		t.Errorf("%s records lost, stored twice, failed or unreported: %s", l.client, summary)
	}
	return summary
}
