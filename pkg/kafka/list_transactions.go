package kafka

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// ListTransactions v0–2 (KIP-664, KIP-994, KIP-1152) lists the
// transactional ids the principal may describe, with their producer id
// and state, filtered as Kafka filters them: by state name (a name Kafka
// does not know is returned in UnknownStateFilters; Dead and
// PrepareEpochFence are known but no id is ever in them here), by producer
// id, by a transaction running longer than DurationFilterMillis (v1), and
// by an RE2 pattern the whole id must match (v2; an invalid one is
// INVALID_REGULAR_EXPRESSION).
func init() { register(kmsg.ListTransactions, 0, 2, (*Server).handleListTransactions) }

func (s *Server) handleListTransactions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	var pattern *regexp.Regexp
	if p := deref(req.TransactionalIDPattern); p != "" {
		var err error
		if pattern, err = regexp.Compile(`^(?:` + p + `)$`); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
	}
	var states []meta.TxnStatus
	for _, f := range req.StateFilters {
		st, known := txnStateByName(f)
		switch {
		case !known:
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		case st != "":
			states = append(states, st)
		}
	}
	if len(req.StateFilters) > len(resp.UnknownStateFilters) && len(states) == 0 {
		return resp, nil // only states no id is ever in
	}
	list, err := s.txn.List(ctx)
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	now := time.Now().UnixMilli()
	for _, st := range list {
		switch {
		case len(states) > 0 && !slices.Contains(states, st.Status),
			len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, st.ProducerID),
			req.DurationFilterMillis >= 0 && st.StartedMs > 0 && now-st.StartedMs <= req.DurationFilterMillis,
			pattern != nil && !pattern.MatchString(st.ID),
			!s.allowed(ctx, r, meta.OpDescribe, auth.TxnID(st.ID)):
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = st.ID, st.ProducerID, txnStateName(st.Status)
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp, nil
}

// txnStateByName is the state Kafka names name, "" for the states Kafka
// has and Strata never records (Dead, PrepareEpochFence); known is false
// for a name Kafka does not have.
func txnStateByName(name string) (st meta.TxnStatus, known bool) {
	for st, n := range txnStates {
		if n == name {
			return st, true
		}
	}
	return "", name == "Dead" || name == "PrepareEpochFence"
}
