package broker

import (
	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/rpc"
)

// ProduceStream serves a proxy's produces over one stream, each as a
// Produce call of its own (rpc.ServeProduceStream). A call per produce
// cost the proxy and the broker more than the produce itself when records
// are small and spread over many partitions.
func (s *Server) ProduceStream(stream stratav1.Broker_ProduceStreamServer) error {
	return rpc.ServeProduceStream(stream, s.Produce)
}
