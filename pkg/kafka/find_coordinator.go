package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator v0–6: every proxy is the coordinator of every group,
// forwarding group calls to the Strata coordinator (docs/kafka.md), so it
// answers with itself — its advertised address and node id — for each
// key (v4+ batches keys). It is the transaction coordinator of every
// transactional id too (txn.go). Share groups are not served.
func init() { register(kmsg.FindCoordinator, 0, 6, (*Server).handleFindCoordinator) }

// Coordinator key types.
const (
	coordinatorGroup = 0
	coordinatorTxn   = 1
)

func (s *Server) handleFindCoordinator(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	self, node := s.identity()
	answer := func(key string) kmsg.FindCoordinatorResponseCoordinator {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = key, node, self.host, self.port
		switch req.CoordinatorType {
		case coordinatorGroup, coordinatorTxn:
		default:
			c.NodeID, c.Host, c.Port = -1, "", -1
			c.ErrorCode = kerr.InvalidRequest.Code
		}
		return c
	}
	if req.Version >= 4 {
		for _, k := range req.CoordinatorKeys {
			resp.Coordinators = append(resp.Coordinators, answer(k))
		}
		return resp, nil
	}
	c := answer(req.CoordinatorKey)
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = c.NodeID, c.Host, c.Port, c.ErrorCode, c.ErrorMessage
	return resp, nil
}
