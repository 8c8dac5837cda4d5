package kafka_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/kafka"
	"github.com/strata-mq/strata/pkg/segment"
)

// TestApiVersions checks that ApiVersions advertises what is served —
// Produce from v0 (refused below v3, as Kafka 4.0 does), Metadata 0–12 —
// at every version, and that a version the proxy does not know is
// answered at v0 with UNSUPPORTED_VERSION and the key list, so a newer
// client can retry with a version it finds there.
func TestApiVersions(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	r := c.raw()
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version, req.ClientSoftwareName, req.ClientSoftwareVersion = v, "strata-test", "1.0"
		resp := r.roundTrip(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		want := map[kmsg.Key][2]int16{kmsg.Produce: {0, 12}, kmsg.Fetch: {4, 17}, kmsg.Metadata: {0, 12}, kmsg.ListOffsets: {1, 10}, kmsg.ApiVersions: {0, 4}}
		for _, k := range resp.ApiKeys {
			if w, ok := want[kmsg.Key(k.ApiKey)]; ok {
				if k.MinVersion != w[0] || k.MaxVersion != w[1] {
					t.Errorf("v%d: %s advertised %d..%d, want %d..%d", v, kmsg.Key(k.ApiKey).Name(), k.MinVersion, k.MaxVersion, w[0], w[1])
				}
				delete(want, kmsg.Key(k.ApiKey))
			}
		}
		if len(want) > 0 {
			t.Errorf("v%d: not advertised: %v", v, want)
		}
	}
	// ApiVersions v99: header only, a body no one can parse.
	frame := binary.BigEndian.AppendUint16(nil, uint16(kmsg.ApiVersions))
	frame = binary.BigEndian.AppendUint16(frame, 99)
	frame = binary.BigEndian.AppendUint32(frame, 77)
	frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
	frame = append(binary.BigEndian.AppendUint32(nil, uint32(len(frame)+3)), append(frame, 1, 2, 3)...)
	r.write(frame)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if corr := r.recv(resp); corr != 77 || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions v99: corr %d, error %d, %d keys; want 77, UNSUPPORTED_VERSION and the key list", corr, resp.ErrorCode, len(resp.ApiKeys))
	}
}

// TestPipelining sends many requests of different APIs without waiting and
// checks that the responses come back in request order, although the
// handlers run concurrently (a fetch long-poll sits between quick ones).
func TestPipelining(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("pipe", 2)
	r := c.raw()
	var reqs []kmsg.Request
	for i := range 30 {
		switch i % 3 {
		case 0:
			m := kmsg.NewPtrMetadataRequest()
			m.Version = 9
			reqs = append(reqs, m)
		case 1:
			f := kmsg.NewPtrFetchRequest()
			f.Version, f.MaxWaitMillis, f.MinBytes, f.MaxBytes = 11, 100, 1, 1<<20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = "pipe"
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.PartitionMaxBytes = int32(i%2), 1<<20
			ft.Partitions = append(ft.Partitions, fp)
			f.Topics = append(f.Topics, ft)
			reqs = append(reqs, f)
		default:
			a := kmsg.NewPtrApiVersionsRequest()
			a.Version = 2
			reqs = append(reqs, a)
		}
	}
	corrs := make([]int32, len(reqs))
	for i, req := range reqs {
		corrs[i] = r.send(req)
	}
	for i, req := range reqs {
		resp := req.ResponseKind()
		if got := r.recv(resp); got != corrs[i] {
			t.Fatalf("response %d has correlation id %d, want %d", i, got, corrs[i])
		}
	}
}

// TestAcksZero checks that a produce with acks=0 is stored but answered
// with nothing: the next response on the connection is the next request's.
func TestAcksZero(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("acks0", 1)
	r := c.raw()
	r.send(produceReq(9, 0, "acks0", 0, batch(t, 5, segment.BatchOptions{})))
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 0
	corr := r.send(av)
	if got := r.recv(av.ResponseKind()); got != corr {
		t.Fatalf("first response has correlation id %d, want %d (the ApiVersions after the acks=0 produce)", got, corr)
	}
	// Responses leave in request order, so the produce had committed
	// when the ApiVersions answer came; the view follows within moments.
	r.waitHW("acks0", 0, 5)
}

// TestProduceVersions checks that Produce v0–2 (message sets before
// record batch v2) are refused with UNSUPPORTED_VERSION, and that v3 and
// v12 are served.
func TestProduceVersions(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("versions", 1)
	r := c.raw()
	for _, v := range []int16{0, 1, 2} {
		resp := r.roundTrip(produceReq(v, 1, "versions", 0, []byte("old message set"))).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedVersion.Code {
			t.Errorf("produce v%d: error %d, want UNSUPPORTED_VERSION", v, code)
		}
	}
	for i, v := range []int16{3, 12} {
		resp := r.roundTrip(produceReq(v, -1, "versions", 0, batch(t, 2, segment.BatchOptions{}))).(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.BaseOffset != int64(2*i) {
			t.Errorf("produce v%d: error %d base offset %d, want 0 and %d", v, p.ErrorCode, p.BaseOffset, 2*i)
		}
	}
}

// TestIdempotentRetry sends the same idempotent produce twice, as a
// producer does when an acknowledgement is lost: the retry succeeds with
// the original offset and nothing is stored twice.
func TestIdempotentRetry(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("idem", 1)
	r := c.raw()
	ipid := kmsg.NewPtrInitProducerIDRequest()
	ipid.Version = 4
	pid := r.roundTrip(ipid).(*kmsg.InitProducerIDResponse)
	if pid.ErrorCode != 0 || pid.ProducerID < 0 || pid.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId: error %d, id %d, epoch %d", pid.ErrorCode, pid.ProducerID, pid.ProducerEpoch)
	}
	opts := segment.BatchOptions{Idempotent: true, ProducerID: pid.ProducerID, BaseSequence: 0}
	first := batch(t, 10, opts)
	opts.BaseSequence = 10
	second := batch(t, 5, opts)
	base := func(b []byte) int64 {
		resp := r.roundTrip(produceReq(9, -1, "idem", 0, b)).(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("produce: error %d (%v)", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
		}
		return p.BaseOffset
	}
	if got := base(first); got != 0 {
		t.Fatalf("first produce at %d, want 0", got)
	}
	if got := base(second); got != 10 {
		t.Fatalf("second produce at %d, want 10", got)
	}
	if got := base(second); got != 10 {
		t.Fatalf("retried second produce at %d, want its original 10", got)
	}
	if got := base(first); got != 0 {
		t.Fatalf("retried first produce at %d, want its original 0", got)
	}
	r.waitHW("idem", 0, 15) // past 15: a retry was stored twice
	// An epoch bump (KIP-360) keeps the id and starts the sequence over.
	ipid.ProducerID, ipid.ProducerEpoch = pid.ProducerID, pid.ProducerEpoch
	bumped := r.roundTrip(ipid).(*kmsg.InitProducerIDResponse)
	if bumped.ErrorCode != 0 || bumped.ProducerID != pid.ProducerID || bumped.ProducerEpoch != 1 {
		t.Fatalf("epoch bump: error %d, id %d, epoch %d", bumped.ErrorCode, bumped.ProducerID, bumped.ProducerEpoch)
	}
}

// TestFetchSemantics checks the fetch rules clients depend on: an empty
// record set is empty bytes, not null; a fetch at the end waits up to
// MaxWait and wakes as soon as data lands; fetch sessions are declined
// with session id 0, and a full fetch naming one is answered in full;
// MaxBytes still returns one whole batch.
func TestFetchSemantics(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("fetch", 1)
	r := c.raw()
	fetch := func(offset int64, wait, maxBytes int32, sessionID, sessionEpoch int32) *kmsg.FetchResponse {
		f := kmsg.NewPtrFetchRequest()
		f.Version, f.MaxWaitMillis, f.MinBytes, f.MaxBytes = 12, wait, 1, maxBytes
		f.SessionID, f.SessionEpoch = sessionID, sessionEpoch
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "fetch"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes = offset, maxBytes
		ft.Partitions = append(ft.Partitions, fp)
		f.Topics = append(f.Topics, ft)
		return r.roundTrip(f).(*kmsg.FetchResponse)
	}
	resp := fetch(0, 0, 1<<20, 0, 0)
	p := resp.Topics[0].Partitions[0]
	if resp.SessionID != 0 || p.ErrorCode != 0 || p.RecordBatches == nil || len(p.RecordBatches) != 0 {
		t.Fatalf("empty fetch: session %d, error %d, batches %v (nil %v); want session 0, no error, empty non-null bytes",
			resp.SessionID, p.ErrorCode, p.RecordBatches, p.RecordBatches == nil)
	}
	if got := fetch(0, 0, 1<<20, 12345, 3); got.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("fetch in an unknown session: error %d, want FETCH_SESSION_ID_NOT_FOUND", got.ErrorCode)
	}
	if got := fetch(0, 0, 1<<20, 0, 3); got.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("incremental fetch without a session: error %d, want INVALID_FETCH_SESSION_EPOCH", got.ErrorCode)
	}
	// A full fetch naming a session (to close it, in Kafka; kafka-go's
	// Client sends id -1 and epoch -1) is answered in full.
	for _, id := range []int32{-1, 12345} {
		for _, epoch := range []int32{-1, 0} {
			got := fetch(0, 0, 1<<20, id, epoch)
			if got.ErrorCode != 0 || got.SessionID != 0 || len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 1 {
				t.Fatalf("full fetch naming session %d at epoch %d: error %d, session %d, %d topics; want 0, 0 and the partition",
					id, epoch, got.ErrorCode, got.SessionID, len(got.Topics))
			}
		}
	}
	start := time.Now()
	_ = fetch(0, 300, 1<<20, 0, -1)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("fetch at the end answered after %v; want it to wait about MaxWait (300ms)", d)
	}
	// A long-poll wakes up when a produce on another connection commits.
	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- fetch(0, 20_000, 1<<20, 0, -1) }()
	start = time.Now()
	w := c.raw()
	for i := range 3 {
		resp := w.roundTrip(produceReq(9, -1, "fetch", 0, batch(t, 100, segment.BatchOptions{}))).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce %d: error %d", i, code)
		}
	}
	got := <-done
	if d := time.Since(start); d > 10*time.Second || len(got.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("long-poll answered after %v with %d bytes; want data well before MaxWait", d, len(got.Topics[0].Partitions[0].RecordBatches))
	}
	// MaxBytes of 1 still returns the first whole batch, and only it.
	one := fetch(0, 0, 1, 0, -1).Topics[0].Partitions[0].RecordBatches
	hs, err := segment.SplitBatches(one)
	if err != nil || len(hs) != 1 {
		t.Fatalf("fetch with MaxBytes 1: %d batches (%v); want exactly one whole batch", len(hs), err)
	}
	r.waitHW("fetch", 0, 300)
	if code := fetch(301, 0, 1<<20, 0, -1).Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end: error %d, want OFFSET_OUT_OF_RANGE", code)
	}
	// From v13 topics are named by id; an unknown id is UNKNOWN_TOPIC_ID.
	stored, err := c.meta.GetTopic(c.ctx, "fetch")
	if err != nil {
		t.Fatal(err)
	}
	byID := func(id [16]byte) kmsg.FetchResponseTopicPartition {
		f := kmsg.NewPtrFetchRequest()
		f.Version, f.MaxBytes = 16, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.TopicID = id
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		f.Topics = append(f.Topics, ft)
		resp := r.roundTrip(f).(*kmsg.FetchResponse)
		if resp.Topics[0].TopicID != id {
			t.Fatalf("v16 fetch answered topic id %x, want %x", resp.Topics[0].TopicID, id)
		}
		return resp.Topics[0].Partitions[0]
	}
	var id [16]byte
	copy(id[:], must(hex.DecodeString(stored.ID)))
	if p := byID(id); p.ErrorCode != 0 || p.HighWatermark != 300 || len(p.RecordBatches) == 0 {
		t.Fatalf("v16 fetch by topic id: error %d, high watermark %d, %d bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
	}
	if p := byID([16]byte{1, 2, 3}); p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("v16 fetch of an unknown topic id: error %d, want UNKNOWN_TOPIC_ID", p.ErrorCode)
	}
}

// TestListOffsets resolves earliest, latest, max-timestamp and a
// timestamp against records with known timestamps.
func TestListOffsets(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("offsets", 1)
	r := c.raw()
	// Timestamps 1_700_000_000_000 + i for i in 0..9, then 0..9 again.
	for range 2 {
		resp := r.roundTrip(produceReq(9, -1, "offsets", 0, batch(t, 10, segment.BatchOptions{}))).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: error %d", code)
		}
	}
	r.waitHW("offsets", 0, 20)
	tests := []struct {
		name       string
		ts         int64
		offset, at int64
	}{
		{"earliest", -2, 0, -1},
		{"latest", -1, 20, -1},
		{"max timestamp", -3, 9, 1_700_000_000_009},
		{"timestamp", 1_700_000_000_004, 4, 1_700_000_000_004},
		{"after every record", 1_800_000_000_000, -1, -1},
	}
	for _, tc := range tests {
		o := r.listOffset("offsets", 0, tc.ts)
		if o.ErrorCode != 0 || o.Offset != tc.offset || o.Timestamp != tc.at || o.LeaderEpoch < 1 {
			t.Errorf("%s: error %d offset %d timestamp %d epoch %d; want offset %d timestamp %d epoch >= 1",
				tc.name, o.ErrorCode, o.Offset, o.Timestamp, o.LeaderEpoch, tc.offset, tc.at)
		}
	}
}

// TestEndOffsetsAfterAck asks for the end offsets (ListOffsets LATEST)
// and the end of the record's leader epoch (OffsetForLeaderEpoch) right
// after each acknowledged produce, as a consumer reading "everything
// produced so far", or checking its position after a leader change, does:
// both answers cover the acknowledged record every time, though the
// proxy's view learns of the commit a watch event later.
func TestEndOffsetsAfterAck(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("acked", 2)
	cl := c.client(kgo.DefaultProduceTopic("acked"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(c.client())
	for i := range 200 {
		rec, err := cl.ProduceSync(c.ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte("v")}).First()
		if err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		// Each answer raises the proxy's view, so each goes first in
		// half the rounds.
		epoch := func() {
			if end := epochEnd(t, c.ctx, cl, rec); end <= rec.Offset {
				t.Fatalf("after produce %d: epoch %d of partition %d ends at %d, but offset %d was acknowledged", i, rec.LeaderEpoch, rec.Partition, end, rec.Offset)
			}
		}
		if i%4 < 2 {
			epoch()
		}
		ends, err := adm.ListEndOffsets(c.ctx, "acked")
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			t.Fatalf("list end offsets after produce %d: %v", i, err)
		}
		if end, _ := ends.Lookup("acked", rec.Partition); end.Offset <= rec.Offset {
			t.Fatalf("after produce %d: end offset %d of partition %d, but offset %d was acknowledged", i, end.Offset, rec.Partition, rec.Offset)
		}
		if i%4 >= 2 {
			epoch()
		}
	}
}

// epochEnd asks OffsetForLeaderEpoch where rec's leader epoch ends.
func epochEnd(t *testing.T, ctx context.Context, cl *kgo.Client, rec *kgo.Record) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = rec.Topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = rec.Partition, -1, rec.LeaderEpoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		t.Fatalf("offset for leader epoch %d of %s/%d: %v", rec.LeaderEpoch, rec.Topic, rec.Partition, err)
	}
	return p.EndOffset
}

// TestShutdown closes the proxy while a fetch long-polls with a 30 s wait
// and another connection sits idle: Close returns well within 2 s, the
// long-poll is answered, and both connections are closed.
func TestShutdown(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("bye", 1)
	idle, poll := c.raw(), c.raw()
	f := kmsg.NewPtrFetchRequest()
	f.Version, f.MaxWaitMillis, f.MinBytes, f.MaxBytes = 11, 30_000, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "bye"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	corr := poll.send(f)
	for c.gauge("strata_kafka_fetches_waiting") < 1 { // bounded by the cluster's context
		select {
		case <-c.ctx.Done():
			t.Fatal("the fetch never started waiting")
		case <-time.After(5 * time.Millisecond):
		}
	}
	start := time.Now()
	if err := c.proxy.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v, want under 2s", d)
	}
	resp := f.ResponseKind()
	if got := poll.recv(resp); got != corr {
		t.Fatalf("long-poll answered with correlation id %d, want %d", got, corr)
	}
	poll.expectClosed()
	idle.expectClosed()
}

// TestCoordinatorAndEpochs checks FindCoordinator (the proxy itself, one
// key or a batch, for groups and transactional ids), OffsetForLeaderEpoch
// (the high watermark: no truncation), and the raw answers of a
// transactional InitProducerId, an EndTxn with nothing begun and an empty
// transactional id.
func TestCoordinatorAndEpochs(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("epochs", 1)
	r := c.raw()
	host, port := c.kafkaHostPort()

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorKey = 3, "g1"
	old := r.roundTrip(fc).(*kmsg.FindCoordinatorResponse)
	if old.ErrorCode != 0 || old.Host != host || old.Port != port {
		t.Fatalf("FindCoordinator v3: error %d at %s:%d, want %s:%d", old.ErrorCode, old.Host, old.Port, host, port)
	}
	fc.Version, fc.CoordinatorKeys = 4, []string{"g1", "g2"}
	batched := r.roundTrip(fc).(*kmsg.FindCoordinatorResponse)
	if len(batched.Coordinators) != 2 || batched.Coordinators[1].Key != "g2" || batched.Coordinators[1].Host != host || batched.Coordinators[1].NodeID != old.NodeID {
		t.Fatalf("FindCoordinator v4: %+v", batched.Coordinators)
	}
	fc.CoordinatorType = 1 // transaction
	if txn := r.roundTrip(fc).(*kmsg.FindCoordinatorResponse); txn.Coordinators[0].ErrorCode != 0 || txn.Coordinators[0].Host != host || txn.Coordinators[0].Port != port {
		t.Fatalf("transaction coordinator: %+v, want %s:%d", txn.Coordinators[0], host, port)
	}

	if resp := r.roundTrip(produceReq(9, -1, "epochs", 0, batch(t, 7, segment.BatchOptions{}))).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: error %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	r.waitHW("epochs", 0, 7)
	epoch := r.listOffset("epochs", 0, -1).LeaderEpoch
	ofe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ofe.Version = 4
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = "epochs"
	op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	op.CurrentLeaderEpoch, op.LeaderEpoch = epoch, epoch
	ot.Partitions = append(ot.Partitions, op)
	ofe.Topics = append(ofe.Topics, ot)
	got := r.roundTrip(ofe).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	if got.ErrorCode != 0 || got.EndOffset != 7 || got.LeaderEpoch != epoch {
		t.Fatalf("OffsetForLeaderEpoch: error %d end %d epoch %d, want end 7 at epoch %d", got.ErrorCode, got.EndOffset, got.LeaderEpoch, epoch)
	}
	ofe.Topics[0].Partitions[0].CurrentLeaderEpoch = epoch + 1
	if got := r.roundTrip(ofe).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]; got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("OffsetForLeaderEpoch from the future: error %d, want UNKNOWN_LEADER_EPOCH", got.ErrorCode)
	}

	txnID := "t1"
	ipid := kmsg.NewPtrInitProducerIDRequest()
	ipid.Version, ipid.TransactionalID, ipid.TransactionTimeoutMillis = 4, &txnID, 60000
	init := r.roundTrip(ipid).(*kmsg.InitProducerIDResponse)
	if init.ErrorCode != 0 || init.ProducerID < 0 || init.ProducerEpoch != 0 {
		t.Fatalf("transactional InitProducerId: error %d, id %d, epoch %d", init.ErrorCode, init.ProducerID, init.ProducerEpoch)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.Version, end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = 3, txnID, init.ProducerID, init.ProducerEpoch, true
	wantCode(t, "EndTxn with nothing begun", r.roundTrip(end).(*kmsg.EndTxnResponse).ErrorCode, kerr.InvalidTxnState)
	empty := ""
	ipid.TransactionalID = &empty
	wantCode(t, "InitProducerId with an empty transactional id", r.roundTrip(ipid).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.InvalidRequest)
}

// TestMetadata checks what a client learns from Metadata: this proxy as
// the one broker at its advertised address and the leader of every
// partition, topic ids that are the topics' Strata ids, lookups by id
// (v10+), and UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist.
func TestMetadata(t *testing.T) {
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	advertised := "localhost:" + port // another name than the bound 127.0.0.1
	c := startCluster(t, clusterOpts{kafka: func(kc *kafka.Config) { kc.Addr, kc.AdvertisedAddr = addr, advertised }})
	c.createTopic("meta", 3)
	stored, err := c.meta.GetTopic(c.ctx, "meta")
	if err != nil {
		t.Fatal(err)
	}
	r := c.raw()
	for _, v := range []int16{0, 1, 9, 12} {
		md := kmsg.NewPtrMetadataRequest()
		md.Version = v
		if v > 0 {
			name := "meta"
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = &name
			missing := "missing"
			mm := kmsg.NewMetadataRequestTopic()
			mm.Topic = &missing
			md.Topics = append(md.Topics, mt, mm)
		}
		resp := r.roundTrip(md).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 || net.JoinHostPort(resp.Brokers[0].Host, fmt.Sprint(resp.Brokers[0].Port)) != advertised {
			t.Fatalf("v%d: brokers %+v, want one at %s", v, resp.Brokers, advertised)
		}
		node := resp.Brokers[0].NodeID
		top := resp.Topics[0]
		if *top.Topic != "meta" || top.ErrorCode != 0 || len(top.Partitions) != 3 {
			t.Fatalf("v%d: topic %v error %d with %d partitions", v, *top.Topic, top.ErrorCode, len(top.Partitions))
		}
		for _, p := range top.Partitions {
			if p.Leader != node || len(p.Replicas) != 1 || p.Replicas[0] != node {
				t.Fatalf("v%d: partition %d led by %d (replicas %v), want node %d", v, p.Partition, p.Leader, p.Replicas, node)
			}
		}
		if v >= 10 && hex.EncodeToString(top.TopicID[:]) != stored.ID {
			t.Fatalf("v%d: topic id %x, want %s", v, top.TopicID, stored.ID)
		}
		if v > 0 && resp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("v%d: missing topic: error %d, want UNKNOWN_TOPIC_OR_PARTITION", v, resp.Topics[1].ErrorCode)
		}
	}
	byID := kmsg.NewPtrMetadataRequest()
	byID.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	copy(mt.TopicID[:], must(hex.DecodeString(stored.ID)))
	byID.Topics = append(byID.Topics, mt)
	if resp := r.roundTrip(byID).(*kmsg.MetadataResponse); resp.Topics[0].ErrorCode != 0 || *resp.Topics[0].Topic != "meta" {
		t.Fatalf("metadata by topic id: error %d", resp.Topics[0].ErrorCode)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestAcksZeroFailure checks that a failed acks=0 produce closes the
// connection — the only way a client that waits for no answer learns of
// it, as in Kafka.
func TestAcksZeroFailure(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("acks0bad", 1)
	r := c.raw()
	b := batch(t, 2, segment.BatchOptions{})
	b[len(b)-1] ^= 0xff // bad CRC
	r.send(produceReq(9, 0, "acks0bad", 0, b))
	r.expectClosed()
}
