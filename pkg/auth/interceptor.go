package auth

import (
	"context"
	"strings"

	"google.golang.org/grpc"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/meta"
)

// strataService prefixes the methods the interceptor guards; other
// services of the same server (health, reflection) pass unguarded.
const strataService = "/strata.v1.Strata/"

// check is one authorization a call needs.
type check struct {
	op string
	r  Resource
}

// UnaryInterceptor guards the public strata.v1.Strata service: it
// authenticates each call (storing the Principal in the context, see
// FromContext), authorizes the operations the request implies (Checks),
// filters list responses down to what the principal may describe, and
// throttles produce and fetch responses by their byte counts.
func (g *Guard) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, strataService) {
			return handler(ctx, req)
		}
		p, err := g.Authenticate(GRPCCredentials(ctx))
		if err != nil {
			g.log.Info("unauthenticated call refused", "method", info.FullMethod, "err", err)
			return nil, err
		}
		ctx = NewContext(ctx, p)
		for _, c := range Checks(req) {
			if err := g.Authorize(ctx, p, c.op, c.r); err != nil {
				return nil, err
			}
		}
		resp, err := handler(ctx, req)
		if err != nil {
			return nil, err
		}
		switch r := resp.(type) {
		case *stratav1.ProduceResponse:
			err = g.Throttle(ctx, p, KindProduce, len(req.(*stratav1.ProduceRequest).GetBatches()))
		case *stratav1.ProduceManyResponse:
			err = g.Throttle(ctx, p, KindProduce, producedBytes(req.(*stratav1.ProduceManyRequest), r))
		case *stratav1.FetchResponse:
			err = g.Throttle(ctx, p, KindFetch, len(r.GetBatches()))
		case *stratav1.ListTopicsResponse:
			err = g.filterTopics(ctx, p, r)
		case *stratav1.ListGroupsResponse:
			err = g.filterGroups(ctx, p, r)
		}
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// Checks returns the authorizations a request of the public API needs.
// Requests it does not know need admin on the cluster, so that a method
// added later is closed until it is mapped here.
func Checks(req any) []check {
	topics := func(op string, c []check, names ...string) []check {
		for _, n := range names {
			c = append(c, check{op, Topic(n)})
		}
		return c
	}
	offsetTopics := func(ts []*stratav1.TopicOffsets) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.GetTopic())
		}
		return out
	}
	switch r := req.(type) {
	case *stratav1.ProduceRequest:
		return []check{{meta.OpProduce, Topic(r.GetTopic())}}
	case *stratav1.ProduceManyRequest:
		// The handler authorizes each part for its topic, so that a part
		// to a topic the principal may not write fails alone.
		return nil
	case *stratav1.FetchRequest:
		return []check{{meta.OpConsume, Topic(r.GetTopic())}}
	case *stratav1.ListOffsetsRequest:
		return []check{{meta.OpDescribe, Topic(r.GetTopic())}}
	case *stratav1.CreateTopicRequest:
		return []check{{meta.OpCreate, Topic(r.GetName())}}
	case *stratav1.DeleteTopicRequest:
		return []check{{meta.OpDelete, Topic(r.GetName())}}
	case *stratav1.AlterTopicRequest:
		return []check{{meta.OpAlter, Topic(r.GetName())}}
	case *stratav1.DeleteRecordsRequest:
		return []check{{meta.OpDelete, Topic(r.GetTopic())}}
	case *stratav1.DescribeTopicRequest:
		return []check{{meta.OpDescribe, Topic(r.GetName())}}
	case *stratav1.ListTopicsRequest, *stratav1.ListGroupsRequest:
		return nil // the response is filtered
	case *stratav1.ClusterStatusRequest:
		return []check{{meta.OpDescribe, Cluster()}}
	case *stratav1.GroupHeartbeatRequest:
		return topics(meta.OpDescribe, []check{{meta.OpConsume, Group(r.GetGroup())}}, r.GetTopics()...)
	case *stratav1.LeaveGroupRequest:
		return []check{{meta.OpConsume, Group(r.GetGroup())}}
	case *stratav1.CommitOffsetsRequest:
		return topics(meta.OpConsume, []check{{meta.OpConsume, Group(r.GetGroup())}}, offsetTopics(r.GetTopics())...)
	case *stratav1.ResetOffsetsRequest:
		return topics(meta.OpConsume, []check{{meta.OpConsume, Group(r.GetGroup())}}, offsetTopics(r.GetTopics())...)
	case *stratav1.FetchOffsetsRequest:
		return topics(meta.OpDescribe, []check{{meta.OpDescribe, Group(r.GetGroup())}}, r.GetTopics()...)
	case *stratav1.DescribeGroupRequest:
		return []check{{meta.OpDescribe, Group(r.GetGroup())}}
	case *stratav1.DeleteGroupRequest:
		return []check{{meta.OpDelete, Group(r.GetGroup())}}
	case *stratav1.DeleteOffsetsRequest:
		var names []string
		for _, tp := range r.GetTopics() {
			names = append(names, tp.GetTopic())
		}
		return topics(meta.OpConsume, []check{{meta.OpDelete, Group(r.GetGroup())}}, names...)
	default: // DrainBroker, UndrainBroker, the ACL calls, and anything added later
		return []check{{meta.OpAdmin, Cluster()}}
	}
}

// producedBytes is the batch bytes of the parts of req that resp says
// were written, which is what a ProduceMany call is throttled by.
func producedBytes(req *stratav1.ProduceManyRequest, resp *stratav1.ProduceManyResponse) int {
	n := 0
	for i, r := range resp.GetResults() {
		if r.GetResponse() != nil && i < len(req.GetParts()) {
			n += len(req.GetParts()[i].GetBatches())
		}
	}
	return n
}

func (g *Guard) filterTopics(ctx context.Context, p Principal, r *stratav1.ListTopicsResponse) error {
	kept := r.Topics[:0]
	for _, t := range r.Topics {
		ok, err := g.Allowed(ctx, p, meta.OpDescribe, Topic(t.GetName()))
		if err != nil {
			return err
		}
		if ok {
			kept = append(kept, t)
		}
	}
	r.Topics = kept
	return nil
}

func (g *Guard) filterGroups(ctx context.Context, p Principal, r *stratav1.ListGroupsResponse) error {
	kept := r.Groups[:0]
	for _, x := range r.Groups {
		ok, err := g.Allowed(ctx, p, meta.OpDescribe, Group(x.GetGroup()))
		if err != nil {
			return err
		}
		if ok {
			kept = append(kept, x)
		}
	}
	r.Groups = kept
	return nil
}
