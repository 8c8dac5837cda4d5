package broker

import (
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/segment"
)

// Kafka transactions, the partition's side (docs/kafka.md). A
// transactional producer's batches carry segment.AttrTransactional and
// follow the idempotent-producer rules of idempotence.go. The first
// transactional batch of a producer with no open transaction in the
// partition opens one (meta.ProducerState.Txn, from the batch's offset);
// the transaction coordinator closes it by writing an end marker, a
// control batch (segment.ControlBatch), which the broker stores like a
// record. A commit marker just closes it; an abort marker also records
// the aborted range in the partition's aborted-transaction index
// (meta.Commit.Aborted) and moves PartitionState.LastAbort. Both happen
// in the fencing commit that stores the marker, so the partition's last
// stable offset and its aborted ranges change atomically with its log.
//
// Markers take no sequence number and leave the producer's sequences and
// request history alone. A marker's epoch must not be older than the one
// the partition holds for its producer; a newer one raises it, so the
// older epoch's later batches are refused with ErrProducerFenced, as
// batches of any epoch below the partition's are.

// markerKind says whether a request is an end-transaction marker.
type markerKind int8

const (
	markerNone markerKind = iota
	markerCommit
	markerAbort
)

// maxPartAborts bounds the abort markers of one flush part: each may add
// a put to its partition's commit, and a group commit holds up to
// maxGroupFlushes parts of a partition, so that one commit takes at most
// maxGroupFlushes × (1 + maxPartAborts) + 1 = 113 operations, within
// etcd's default of 128 per transaction. The flush leaves the partition's
// later produces buffered for the next one.
const maxPartAborts = 6

// requestProducer reads the producer identity of a request's batches: the
// marker of a control batch, or the sequences (requestSeqs) of data
// batches, which must be all transactional or none.
func requestProducer(b []byte, hs []segment.BatchHeader) (seqRange, error) {
	txn := hs[0].Attributes&segment.AttrTransactional != 0
	for _, h := range hs {
		switch {
		case h.Attributes&segment.AttrControl != 0:
			return requestMarker(b, hs)
		case (h.Attributes&segment.AttrTransactional != 0) != txn:
			return seqRange{}, apierr.Errorf(apierr.ErrInvalidRequest, "a request mixes transactional and other batches")
		}
	}
	if txn && hs[0].ProducerID == segment.NoProducerID {
		return seqRange{}, apierr.Errorf(apierr.ErrInvalidRequest, "a transactional batch needs a producer id")
	}
	r, err := requestSeqs(hs)
	r.txn = txn
	return r, err
}

// requestMarker checks a request that holds a control batch: it must be
// the request's only batch, carry a producer id and epoch and no
// sequence, and hold one valid end-transaction marker.
func requestMarker(b []byte, hs []segment.BatchHeader) (seqRange, error) {
	h := hs[0]
	switch {
	case len(hs) != 1:
		return seqRange{}, apierr.Errorf(apierr.ErrInvalidRequest, "a control batch must be the only batch of its request")
	case h.ProducerID < 0 || h.ProducerEpoch < 0:
		return seqRange{}, apierr.Errorf(apierr.ErrInvalidRequest, "a control batch needs a producer id and epoch, has %d/%d", h.ProducerID, h.ProducerEpoch)
	case h.BaseSequence != segment.NoSequence:
		return seqRange{}, apierr.Errorf(apierr.ErrInvalidRequest, "a control batch has base sequence %d, want -1", h.BaseSequence)
	}
	commit, err := segment.ParseMarker(b)
	if err != nil {
		return seqRange{}, apierr.Errorf(apierr.ErrCorruptBatch, "control batch: %v", err)
	}
	r := seqRange{pid: h.ProducerID, epoch: h.ProducerEpoch, first: segment.NoSequence, last: segment.NoSequence, marker: markerAbort}
	if commit {
		r.marker = markerCommit
	}
	return r, nil
}

// fencedLocked refuses a request whose epoch is older than the one the
// partition holds for its producer. s.mu must be held.
func fencedLocked(p *partition, r seqRange) error {
	if h := p.prod[r.pid]; len(h) > 0 && r.epoch < h[len(h)-1].Epoch {
		return apierr.Errorf(apierr.ErrProducerFenced, "producer %d epoch %d is older than its epoch %d in %s/%d",
			r.pid, r.epoch, h[len(h)-1].Epoch, p.key.TopicID, p.key.Partition)
	}
	return nil
}

// afterProduce returns a producer's state once pr, its next request in
// the partition, commits on top of prev (nil: the partition does not know
// the producer), and the transaction pr aborts, if any.
//
// A marker of a newer epoch, or of a producer the partition does not know
// (one that added the partition to its transaction and wrote nothing here
// yet), records the epoch with no request remembered, as Kafka does: a
// batch of an older epoch still on its way, sent before the coordinator
// fenced the producer, is then refused here rather than opening a
// transaction that no marker will close.
func afterProduce(prev *meta.ProducerState, pr *produce) (next meta.ProducerState, aborted *meta.AbortedTxn) {
	r := pr.seqs
	if r.marker == markerNone {
		next = meta.ProducerState{Epoch: r.epoch, FirstSeq: r.first, LastSeq: r.last, FirstOffset: pr.base, LastOffset: pr.last}
		switch {
		case prev != nil && prev.Txn != nil:
			next.Txn = prev.Txn // only a marker closes a transaction
		case r.txn:
			next.Txn = &meta.OpenTxn{First: pr.base}
		}
		return next, nil
	}
	if prev != nil && r.epoch <= prev.Epoch {
		next = *prev
	} else {
		// The epoch's sequences start from 0: none is remembered yet.
		next = meta.ProducerState{Epoch: r.epoch, FirstSeq: segment.NoSequence, LastSeq: segment.NoSequence,
			FirstOffset: pr.base, LastOffset: pr.base}
		if prev != nil {
			next.Txn = prev.Txn
		}
	}
	if next.Txn != nil && r.marker == markerAbort {
		aborted = &meta.AbortedTxn{ProducerID: r.pid, First: next.Txn.First, Last: pr.base}
	}
	next.Txn = nil
	return next, aborted
}

// markLocked applies an accepted marker to the producer's working state:
// it closes its transaction and, with a newer epoch (or a producer it
// does not know), replaces its requests by the epoch's empty history.
// s.mu must be held.
func markLocked(p *partition, pr *produce) {
	r := pr.seqs
	h := p.prod[r.pid]
	if len(h) > 0 && h[len(h)-1].Epoch >= r.epoch {
		h[len(h)-1].Txn = nil // sequences and history stay
		return
	}
	next, _ := afterProduce(nil, pr)
	p.prod[r.pid] = []*prodSeq{{ProducerState: next, pending: pr}}
	p.seqMovedLocked() // requests of the older epoch waiting for a gap are fenced now
	if len(p.prod) > meta.MaxProducersPerPartition {
		forgetOldestLocked(p)
	}
}
