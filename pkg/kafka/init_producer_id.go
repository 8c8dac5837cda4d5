package kafka

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0–4 gives an idempotent producer its id and epoch.
// Strata's producer ids are random 63-bit numbers, as the Go SDK's are
// (pkg/client.Idempotence): no round trip to the coordinator, and a
// collision between two live producers of one partition is about as
// likely as 2^-58. The epoch starts at 0. A producer that asks to bump its
// epoch (v3+, KIP-360, after it lost track of a sequence) keeps its id
// with the next epoch, which the brokers treat as a fresh sequence from 0;
// at the last epoch it gets a new id instead. A transactional id goes to
// the transaction coordinator (txn.go), which keeps one producer id per
// transactional id and fences its earlier producers; an empty one is
// INVALID_REQUEST, as in Kafka.
func init() { register(kmsg.InitProducerID, 0, 4, (*Server).handleInitProducerID) }

func (s *Server) handleInitProducerID(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil && *req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
	case req.TransactionalID != nil:
		s.initTxnProducer(ctx, r, req, resp)
	case req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1:
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
	case req.ProducerID >= 0 && req.ProducerEpoch < 0:
		resp.ErrorCode = kerr.InvalidRequest.Code
	default:
		resp.ProducerID, resp.ProducerEpoch = newProducerID(), 0
	}
	return resp, nil
}

// newProducerID returns a random non-negative 63-bit producer id.
func newProducerID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}
