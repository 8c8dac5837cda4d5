package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/segment"
)

// setAttrs rewrites the attributes of the batch b and fixes its CRC.
func setAttrs(b []byte, attrs int16) []byte {
	binary.BigEndian.PutUint16(b[21:], uint16(attrs))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// txnBatch encodes n transactional records of producer pid at epoch from
// sequence seq.
func txnBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	recs := make([]segment.Record, n)
	for i := range recs {
		recs[i] = segment.Record{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "txn-%d-%d", pid, int(seq)+i)}
	}
	b, err := segment.EncodeBatch(recs, segment.BatchOptions{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	return setAttrs(b, segment.AttrTransactional)
}

func marker(pid int64, epoch int16, commit bool) []byte {
	return segment.ControlBatch(pid, epoch, commit, time.Now().UnixMilli())
}

// txnEnv is a broker with one single-partition topic.
type txnEnv struct {
	*env
	top meta.Topic
}

func newTxnEnv(t *testing.T, name string) txnEnv {
	e := newEnv(t)
	return txnEnv{e, e.createTopic(t, name, 1)}
}

// send produces b to partition 0 and returns its base offset.
func (e txnEnv) send(t *testing.T, b []byte) (int64, error) {
	t.Helper()
	resp, err := e.cli.Produce(testCtx(t), &stratav1.ProduceRequest{Topic: e.top.Name, Partition: 0, Batches: b})
	if err != nil {
		return -1, apiErr(err)
	}
	return resp.BaseOffset, nil
}

// at produces b and fails the test unless it lands at offset want.
func (e txnEnv) at(t *testing.T, b []byte, want int64) {
	t.Helper()
	got, err := e.send(t, b)
	if err != nil || got != want {
		t.Fatalf("produce at %d, %v; want offset %d", got, err, want)
	}
}

func (e txnEnv) state(t *testing.T) meta.PartitionState {
	t.Helper()
	st, err := e.meta.GetPartition(testCtx(t), e.top.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestTxnOpenCommitAbort walks a transactional producer through a
// committed and an aborted transaction: the open one holds the last
// stable offset, a commit marker releases it, an abort lands in the
// aborted index and LastAbort, and markers leave sequences alone.
func TestTxnOpenCommitAbort(t *testing.T) {
	e := newTxnEnv(t, "txn")
	e.at(t, batch(t, "plain", 1), 0)
	e.at(t, txnBatch(t, 5, 0, 0, 2), 1)
	e.at(t, txnBatch(t, 5, 0, 2, 1), 3)
	if st := e.state(t); st.LastStable() != 1 || st.NextOffset != 4 || st.Producers[5].Txn == nil {
		t.Fatalf("open transaction: LSO %d, state %+v", st.LastStable(), st)
	}
	e.at(t, marker(5, 0, true), 4)
	st := e.state(t)
	if ps := st.Producers[5]; st.LastStable() != 5 || ps.Txn != nil || ps.LastSeq != 2 || ps.LastOffset != 3 || st.LastAbort != 0 {
		t.Fatalf("after commit: LSO %d, state %+v", st.LastStable(), st)
	}

	e.at(t, txnBatch(t, 5, 0, 3, 1), 5)
	e.at(t, marker(5, 0, false), 6)
	st = e.state(t)
	if st.LastStable() != 7 || st.LastAbort != 6 || st.Producers[5].Txn != nil {
		t.Fatalf("after abort: LSO %d, state %+v", st.LastStable(), st)
	}
	ab, err := e.meta.AbortedTxns(testCtx(t), e.top.ID, 0, 0, 100, 0)
	if err != nil || len(ab) != 1 || ab[0].ProducerID != 5 || ab[0].First != 5 || ab[0].Last != 6 {
		t.Fatalf("aborted index %+v, %v", ab, err)
	}

	// Sequences carry on across markers; retries still deduplicate.
	next := txnBatch(t, 5, 0, 4, 1)
	e.at(t, append([]byte(nil), next...), 7)
	e.at(t, next, 7)
	e.at(t, marker(5, 0, true), 8) // no open transaction: stored, changes nothing
	st = e.state(t)
	if ps := st.Producers[5]; st.LastAbort != 6 || st.LastStable() != 9 || ps.LastSeq != 4 || ps.LastOffset != 7 {
		t.Fatalf("a marker without a transaction changed the state: %+v", st)
	}

	// A producer that wrote nothing here: its marker records its epoch,
	// so a batch of an older one, still on its way, is refused.
	e.at(t, marker(99, 3, false), 9)
	if ps := e.state(t).Producers[99]; ps.Epoch != 3 || ps.LastSeq != -1 || ps.Txn != nil {
		t.Fatalf("producer 99 after its marker: %+v", ps)
	}
	if _, err := e.send(t, txnBatch(t, 99, 2, 0, 1)); !errors.Is(err, apierr.ErrProducerFenced) {
		t.Fatalf("batch of epoch 2 after an epoch-3 marker: %v, want ErrProducerFenced", err)
	}
	e.at(t, txnBatch(t, 99, 3, 0, 1), 10)
	if st := e.state(t); st.LastStable() != 10 || st.LastAbort != 6 {
		t.Fatalf("producer 99's new transaction: LSO %d, state %+v", st.LastStable(), st)
	}
	if n := len(e.readPartition(t, e.top.ID, 0)); n != 11 {
		t.Fatalf("partition holds %d records, want 11", n)
	}
}

func TestTxnBadInput(t *testing.T) {
	e := newTxnEnv(t, "txn-bad")
	withSeq := marker(5, 0, true)
	binary.BigEndian.PutUint32(withSeq[53:], 0)
	setAttrs(withSeq, segment.AttrControl|segment.AttrTransactional)
	twoRecords, err := segment.EncodeBatch([]segment.Record{{Key: []byte{0, 0, 0, 1}, Value: make([]byte, 6)}, {Key: []byte{0, 0, 0, 1}, Value: make([]byte, 6)}},
		segment.BatchOptions{Idempotent: true, ProducerID: 5, BaseSequence: segment.NoSequence})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"transactional without producer", setAttrs(batch(t, "x", 1), segment.AttrTransactional), apierr.ErrInvalidRequest},
		{"transactional and idempotent mixed", append(txnBatch(t, 5, 0, 0, 1), idemBatch(t, "x", 5, 1, 1)...), apierr.ErrInvalidRequest},
		{"marker and data", append(marker(5, 0, true), txnBatch(t, 5, 0, 0, 1)...), apierr.ErrInvalidRequest},
		{"data and marker", append(txnBatch(t, 5, 0, 0, 1), marker(5, 0, true)...), apierr.ErrInvalidRequest},
		{"two markers", append(marker(5, 0, true), marker(5, 0, true)...), apierr.ErrInvalidRequest},
		{"marker without producer", marker(segment.NoProducerID, 0, true), apierr.ErrInvalidRequest},
		{"marker with a sequence", withSeq, apierr.ErrInvalidRequest},
		{"marker of two records", setAttrs(twoRecords, segment.AttrControl|segment.AttrTransactional), apierr.ErrCorruptBatch},
		{"control but not transactional", setAttrs(marker(5, 0, true), segment.AttrControl), apierr.ErrCorruptBatch},
		{"control record that is no marker", setAttrs(idemBatch(t, "x", 5, -1, 1), segment.AttrControl|segment.AttrTransactional), apierr.ErrCorruptBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.send(t, tt.batch); !errors.Is(err, tt.want) {
				t.Fatalf("Produce = %v, want %v", err, tt.want)
			}
		})
	}
	if st := e.state(t); st.NextOffset != 0 {
		t.Fatalf("refused requests were written: next offset %d", st.NextOffset)
	}
}

// TestTxnEpochFencing: batches and markers of an epoch below the one the
// partition holds for their producer are refused; a marker of a newer
// epoch raises it, and the newer epoch starts its sequences from 0.
func TestTxnEpochFencing(t *testing.T) {
	e := newTxnEnv(t, "txn-fence")
	e.at(t, txnBatch(t, 5, 1, 0, 2), 0)
	for name, b := range map[string][]byte{"batch": txnBatch(t, 5, 0, 2, 1), "idempotent batch": idemBatch(t, "x", 5, 0, 1), "marker": marker(5, 0, false)} {
		if _, err := e.send(t, b); !errors.Is(err, apierr.ErrProducerFenced) {
			t.Fatalf("%s of epoch 0 after epoch 1: %v, want ErrProducerFenced", name, err)
		}
	}
	// The coordinator aborts with a bumped epoch (a timed-out transaction).
	e.at(t, marker(5, 2, false), 2)
	st := e.state(t)
	if ps := st.Producers[5]; ps.Epoch != 2 || ps.Txn != nil || st.LastAbort != 2 {
		t.Fatalf("after the epoch-2 abort: %+v", st)
	}
	if _, err := e.send(t, txnBatch(t, 5, 1, 2, 1)); !errors.Is(err, apierr.ErrProducerFenced) {
		t.Fatalf("epoch 1 after the epoch-2 marker: %v, want ErrProducerFenced", err)
	}
	e.at(t, txnBatch(t, 5, 2, 0, 1), 3)
	e.at(t, txnBatch(t, 5, 2, 0, 1), 3) // a retry, deduplicated
	e.at(t, txnBatch(t, 5, 2, 1, 1), 4)
	if st := e.state(t); st.LastStable() != 3 || st.Producers[5].LastSeq != 1 {
		t.Fatalf("epoch 2's transaction: LSO %d, state %+v", st.LastStable(), st)
	}
}

// TestTxnSurvivesHandOff: an open transaction and the last abort travel
// with the partition to its next owner, which closes the transaction.
func TestTxnSurvivesHandOff(t *testing.T) {
	e1 := newEnv(t)
	e2 := newEnv(t, func(c *Config) { c.Meta, c.Store = e1.meta, e1.store })
	a := txnEnv{e1, e1.createTopic(t, "txn-handoff", 1)}
	a.at(t, txnBatch(t, 6, 0, 0, 1), 0)
	a.at(t, marker(6, 0, false), 1)
	a.at(t, txnBatch(t, 5, 0, 0, 2), 2)
	if _, err := e1.cli.ReleasePartitions(testCtx(t), &stratav1.ReleasePartitionsRequest{
		Partitions: []*stratav1.PartitionRef{{Topic: a.top.Name, Partition: 0}}, Target: e2.b.ID(),
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { ep, ok := e2.b.ownedEpoch(a.top.ID, 0); return ok && ep == 2 })
	b := txnEnv{e2, a.top}
	if st := b.state(t); st.Broker != e2.b.ID() || st.LastAbort != 1 || st.LastStable() != 2 {
		t.Fatalf("after the hand-off: LSO %d, state %+v", st.LastStable(), st)
	}
	retry := txnBatch(t, 5, 0, 0, 2)
	b.at(t, retry, 2) // deduplicated by the new owner
	b.at(t, marker(5, 0, true), 4)
	if st := b.state(t); st.LastStable() != 5 || st.LastAbort != 1 || st.Producers[5].Txn != nil {
		t.Fatalf("after the commit at the new owner: LSO %d, state %+v", st.LastStable(), st)
	}
}

// TestTxnRetryFromLog: a retry older than every remembered request is
// looked up in the log, past the producer's markers there.
func TestTxnRetryFromLog(t *testing.T) {
	e := newTxnEnv(t, "txn-log")
	type sent struct {
		batch []byte
		base  int64
	}
	var reqs []sent
	for i := range int32(seqHistory + 3) {
		b := txnBatch(t, 9, 0, 2*i, 2)
		base, err := e.send(t, append([]byte(nil), b...))
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, sent{b, base})
		if _, err := e.send(t, marker(9, 0, i%2 == 0)); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range reqs[:3] {
		if got, err := e.send(t, r.batch); err != nil || got != r.base {
			t.Fatalf("retry of request %d: %d, %v; want %d", i, got, err, r.base)
		}
	}
}

// TestCutBoundsAborts: a flush part takes at most maxPartAborts abort
// markers, so its partition's commit stays within one etcd transaction;
// the rest stay buffered for the next flush.
func TestCutBoundsAborts(t *testing.T) {
	st := meta.PartitionState{Epoch: 1, NextOffset: 10, Producers: map[int64]meta.ProducerState{}}
	for pid := range int64(10) {
		st.Producers[pid] = meta.ProducerState{FirstSeq: 0, LastSeq: 0, FirstOffset: pid, LastOffset: pid, Txn: &meta.OpenTxn{First: pid}}
	}
	p := newPartition(meta.PartitionID{TopicID: "t", Partition: 0}, st)
	s := &Server{}
	for i := range int64(12) {
		pr := &produce{base: 10 + i, last: 10 + i, size: 100, seqs: seqRange{pid: i % 10, first: -1, last: -1, marker: markerAbort}}
		if i < 2 {
			pr.seqs = seqRange{pid: 50 + i, first: 0, last: 0} // idempotent data
		}
		p.pending = append(p.pending, pr)
		p.pendingBytes += pr.size
		s.bufBytes += pr.size
	}
	fp, bytes := s.cutPartLocked(p)
	if len(fp.produces) != 2+maxPartAborts || len(fp.aborted) != maxPartAborts || bytes != 100*(2+maxPartAborts) {
		t.Fatalf("first part: %d produces, %d aborted, %d bytes", len(fp.produces), len(fp.aborted), bytes)
	}
	if fp.abortAfter != 10+1+maxPartAborts || p.cutAbort != fp.abortAfter || len(p.pending) != 4 || s.bufBytes != 400 {
		t.Fatalf("after the first part: last abort %d/%d, %d pending, %d bytes", fp.abortAfter, p.cutAbort, len(p.pending), s.bufBytes)
	}
	fp2, _ := s.cutPartLocked(p)
	if len(fp2.produces) != 4 || len(fp2.aborted) != 4 || fp2.abortBefore != fp.abortAfter || p.pending != nil || s.bufBytes != 0 {
		t.Fatalf("second part: %d produces, %d aborted, %d pending", len(fp2.produces), len(fp2.aborted), len(p.pending))
	}
	for _, ps := range fp2.prodAfter {
		if ps.Txn != nil {
			t.Fatalf("an open transaction survived its abort: %+v", fp2.prodAfter)
		}
	}
}

// TestForgetKeepsOpenTxns: a partition that must forget a producer never
// forgets one with an open transaction.
func TestForgetKeepsOpenTxns(t *testing.T) {
	st := meta.PartitionState{Epoch: 1, Producers: map[int64]meta.ProducerState{}}
	for pid := range int64(meta.MaxProducersPerPartition) {
		st.Producers[pid] = meta.ProducerState{LastOffset: pid}
	}
	st.Producers[0] = meta.ProducerState{LastOffset: 0, Txn: &meta.OpenTxn{First: 0}}
	p := newPartition(meta.PartitionID{TopicID: "t", Partition: 0}, st)
	acceptLocked(p, &produce{base: 100, last: 100, seqs: seqRange{pid: 1000, first: 0, last: 0}})
	if _, ok := p.prod[0]; !ok {
		t.Fatal("the producer with an open transaction was forgotten")
	}
	if _, ok := p.prod[1]; ok || len(p.prod) != meta.MaxProducersPerPartition {
		t.Fatalf("%d producers; the oldest without a transaction should go", len(p.prod))
	}
}

// TestTxnFirstBatchPastZero: a partition takes a transactional producer's
// first batch at any sequence once the gap wait passes (librdkafka purges
// an aborted transaction's unsent batches, so the first batch a partition
// sees may start past 0, and Kafka accepts it), and carries on from it.
// An idempotent producer without a transaction, and a new epoch of a
// producer the partition knows, still must start at 0.
func TestTxnFirstBatchPastZero(t *testing.T) {
	e := newTxnEnv(t, "txn-first")
	e.at(t, txnBatch(t, 7, 0, 4, 2), 0)
	e.at(t, txnBatch(t, 7, 0, 6, 1), 2)
	e.at(t, txnBatch(t, 7, 0, 4, 2), 0) // a retry: the original offsets
	if ps := e.state(t).Producers[7]; ps.LastSeq != 6 || ps.Txn == nil {
		t.Fatalf("producer 7: %+v", ps)
	}
	if _, err := e.send(t, idemBatch(t, "plain", 8, 4, 1)); !errors.Is(err, apierr.ErrOutOfOrderSequence) {
		t.Fatalf("idempotent producer's first batch at sequence 4: %v, want ErrOutOfOrderSequence", err)
	}
	e.at(t, marker(7, 0, false), 3)
	if _, err := e.send(t, txnBatch(t, 7, 1, 3, 1)); !errors.Is(err, apierr.ErrOutOfOrderSequence) {
		t.Fatalf("new epoch's first batch at sequence 3: %v, want ErrOutOfOrderSequence", err)
	}
	e.at(t, txnBatch(t, 7, 1, 0, 1), 4)
	if n := len(e.readPartition(t, e.top.ID, 0)); n != 5 {
		t.Fatalf("partition holds %d records, want 5", n)
	}
}
