package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/segment"
)

// TestEveryCodec produces with each codec the SDK offers, through real
// brokers that store the compressed batches untouched, and reads every
// record back identical — key, value, headers and timestamp.
func TestEveryCodec(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Brokers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl := c.Client()
	codecs := []segment.Codec{segment.CodecNone, segment.CodecGzip, segment.CodecSnappy, segment.CodecLZ4, segment.CodecZstd}
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			topic := "codec-" + codec.String()
			if _, err := cl.CreateTopic(ctx, topic, 1); err != nil {
				t.Fatal(err)
			}
			p, err := cl.NewProducer(client.Compression(codec))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			const n = 2000
			ts := time.UnixMilli(1_790_000_000_000)
			sent := make([]*client.Record, n)
			for i := range sent {
				sent[i] = &client.Record{
					Topic: topic, Partition: -1,
					Key:       fmt.Appendf(nil, "k%d", i),
					Value:     bytes.Repeat(fmt.Appendf(nil, "%s-%d ", codec, i), 20),
					Headers:   []client.Header{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}},
					Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
				}
			}
			if err := p.ProduceSync(ctx, sent...); err != nil {
				t.Fatal(err)
			}
			cons, err := cl.NewConsumer(client.ConsumeStart(client.StartEarliest))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			if err := cons.Assign(topic); err != nil {
				t.Fatal(err)
			}
			var got []*client.Record
			for len(got) < n {
				recs, err := cons.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, recs...)
			}
			for i, r := range got[:n] {
				w := sent[i]
				if r.Offset != int64(i) || !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) ||
					!r.Timestamp.Equal(w.Timestamp) || len(r.Headers) != 1 || !bytes.Equal(r.Headers[0].Value, w.Headers[0].Value) {
					t.Fatalf("record %d read back as offset %d key %q ts %v headers %v", i, r.Offset, r.Key, r.Timestamp, r.Headers)
				}
			}
		})
	}
}
