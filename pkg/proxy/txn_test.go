package proxy

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/segment"
)

// TestProduceRefusesTxnBatches: the gRPC front end refuses end-transaction
// markers and transactional batches from clients, in Produce and in each
// part of ProduceMany, while the Router (the transaction coordinator's
// path) still carries markers.
func TestProduceRefusesTxnBatches(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("txn", 1)
	b1 := e.startBroker("b1")
	e.assign(top.ID, 0, "b1")
	ctl := segment.ControlBatch(5, 0, true, 1000)
	txn, err := segment.EncodeBatch([]segment.Record{{Timestamp: 1000, Value: []byte("v")}}, segment.BatchOptions{Idempotent: true, ProducerID: 5})
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(txn[21:], uint16(segment.AttrTransactional))
	binary.BigEndian.PutUint32(txn[17:], crc32.Checksum(txn[21:], crc32.MakeTable(crc32.Castagnoli)))

	for name, b := range map[string][]byte{"marker": ctl, "transactional": txn, "plain then marker": concat([][]byte{batch(t, 1, 1000), ctl})} {
		_, err := e.client.Produce(e.ctx, &stratav1.ProduceRequest{Topic: "txn", Partition: 0, Batches: b})
		wantErr(t, name, err, apierr.ErrInvalidRequest)
		if name == "marker" && !strings.Contains(err.Error(), "control batches are written only by the transaction coordinator") {
			t.Fatalf("marker refused with %v", err)
		}
	}
	resp, err := e.client.ProduceMany(e.ctx, &stratav1.ProduceManyRequest{Parts: []*stratav1.ProduceRequest{
		{Topic: "txn", Partition: 0, Batches: ctl},
		{Topic: "txn", Partition: 0, Batches: txn},
		{Topic: "txn", Partition: 0, Batches: batch(t, 1, 1000)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results[:2] {
		wantErr(t, "ProduceMany part", apierr.FromPart(r.GetError()), apierr.ErrInvalidRequest)
	}
	if r := resp.Results[2]; r.GetError() != nil || r.GetResponse().GetBaseOffset() != 0 {
		t.Fatalf("plain part: %v", r)
	}
	if n := b1.calls.Load(); n != 1 {
		t.Fatalf("broker got %d produces, want only the plain one", n)
	}
	if res, err := e.srv.router.Produce(e.ctx, "txn", 0, segment.ControlBatch(5, 0, true, 1000)); err != nil || res.BaseOffset != 1 {
		t.Fatalf("marker through the Router: %+v, %v; want offset 1", res, err)
	}
}
