package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DescribeCluster v0–2 answers what Metadata says of the cluster: this
// proxy as its one broker and controller, and the cluster id. Admin
// clients (Java's AdminClient.describeCluster) prefer it to Metadata. It
// needs describe on the cluster, as gRPC's ClusterStatus does. Controller
// endpoints (endpoint type 2) are not served: Strata has no KRaft
// controllers.
func init() { register(kmsg.DescribeCluster, 0, 2, (*Server).handleDescribeCluster) }

// endpointTypeBrokers asks DescribeCluster for brokers (not controllers).
const endpointTypeBrokers = 1

func (s *Server) handleDescribeCluster(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType, resp.ClusterID, resp.ControllerID = req.EndpointType, s.cluster, -1
	if req.Version >= 1 && req.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return resp, nil
	}
	if code, err := s.authorize(ctx, r, meta.OpDescribe, auth.Cluster()); err != nil {
		resp.ErrorCode, resp.ErrorMessage = code, errMsg(err)
		return resp, nil
	}
	self, node := s.identity()
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = node, self.host, self.port
	resp.Brokers, resp.ControllerID = []kmsg.DescribeClusterResponseBroker{b}, node
	return resp, nil
}
