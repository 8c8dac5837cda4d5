package kafka

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DescribeTransactions v0 (KIP-664) describes transactional ids as their
// coordinator holds them: state, producer id and epoch, timeout, when the
// current transaction started (-1 if none has), and the partitions it
// holds. Describing an id needs describe on it (implied by produce); an id
// never used is TRANSACTIONAL_ID_NOT_FOUND.
func init() { register(kmsg.DescribeTransactions, 0, 0, (*Server).handleDescribeTransactions) }

func (s *Server) handleDescribeTransactions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		ts := kmsg.NewDescribeTransactionsResponseTransactionState()
		ts.TransactionalID, ts.StartTimestamp, ts.ProducerID, ts.ProducerEpoch = id, -1, -1, -1
		if code, _ := s.authorize(ctx, r, meta.OpDescribe, auth.TxnID(id)); code != 0 {
			ts.ErrorCode = code
			resp.TransactionStates = append(resp.TransactionStates, ts)
			continue
		}
		st, err := s.txn.Describe(ctx, id)
		switch {
		case err != nil:
			ts.ErrorCode = errCode(err)
		case st.Revision == 0:
			ts.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			describeTxn(&ts, st)
		}
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp, nil
}

// describeTxn fills ts from st, the partitions grouped by topic in the
// order they were added.
func describeTxn(ts *kmsg.DescribeTransactionsResponseTransactionState, st meta.TxnState) {
	ts.State, ts.TimeoutMillis = txnStateName(st.Status), st.TimeoutMs
	ts.ProducerID, ts.ProducerEpoch = st.ProducerID, st.Epoch
	if st.StartedMs > 0 {
		ts.StartTimestamp = st.StartedMs
	}
	for _, p := range st.Partitions {
		i := slices.IndexFunc(ts.Topics, func(t kmsg.DescribeTransactionsResponseTransactionStateTopic) bool { return t.Topic == p.Topic })
		if i < 0 {
			t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			t.Topic = p.Topic
			ts.Topics = append(ts.Topics, t)
			i = len(ts.Topics) - 1
		}
		ts.Topics[i].Partitions = append(ts.Topics[i].Partitions, p.Partition)
	}
}

// txnStates are Kafka's names of the transaction states, which
// DescribeTransactions and ListTransactions answer with and filter by.
var txnStates = map[meta.TxnStatus]string{
	meta.TxnEmpty:          "Empty",
	meta.TxnOngoing:        "Ongoing",
	meta.TxnPrepareCommit:  "PrepareCommit",
	meta.TxnPrepareAbort:   "PrepareAbort",
	meta.TxnCompleteCommit: "CompleteCommit",
	meta.TxnCompleteAbort:  "CompleteAbort",
}

// txnStateName is Kafka's name of s.
func txnStateName(s meta.TxnStatus) string {
	if name, ok := txnStates[s]; ok {
		return name
	}
	return string(s)
}
