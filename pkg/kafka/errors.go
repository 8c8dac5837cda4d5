package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// errCode is the Kafka error code of an error from the core: the row of
// pkg/apierr's one table that the error matches.
func errCode(err error) int16 { return apierr.KafkaCode(err) }

// errMsg is an error's message for a response's ErrorMessage field; nil
// for no error.
func errMsg(err error) *string {
	if err == nil {
		return nil
	}
	m := err.Error()
	return &m
}

// authorize checks that the request's principal may perform op on res,
// through the same Guard as gRPC calls. A denial is returned as the
// resource's Kafka authorization error code; other failures (the ACLs not
// loaded before ctx ended) as their own code.
func (s *Server) authorize(ctx context.Context, r *request, op string, res auth.Resource) (int16, error) {
	err := s.core.Guard.Authorize(ctx, r.principal(), op, res)
	switch {
	case err == nil:
		return 0, nil
	case !errors.Is(err, apierr.ErrPermissionDenied):
		return errCode(err), err
	case res.Type == meta.ResourceGroup:
		return kerr.GroupAuthorizationFailed.Code, err
	case res.Type == meta.ResourceCluster:
		return kerr.ClusterAuthorizationFailed.Code, err
	case res.Type == meta.ResourceTxnID:
		return kerr.TransactionalIDAuthorizationFailed.Code, err
	default:
		return kerr.TopicAuthorizationFailed.Code, err
	}
}

// allowed reports, without logging a denial, whether the request's
// principal may perform op on res: for filtering lists, as gRPC's
// ListTopics is filtered.
func (s *Server) allowed(ctx context.Context, r *request, op string, res auth.Resource) bool {
	ok, err := s.core.Guard.Allowed(ctx, r.principal(), op, res)
	return err == nil && ok
}
