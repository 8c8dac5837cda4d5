package broker

import (
	"sync"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/rpc"
)

// ProduceStream serves a proxy's produces over one stream, each as a
// Produce call of its own (rpc.ServeProduceStream). A call per produce
// cost the proxy and the broker more than the produce itself when records
// are small and spread over many partitions.
//
// A message marked more holds an idle flush for the produce behind it
// (holdFlush), so that the produces of one client request share a flush
// rather than the first going alone.
func (s *Server) ProduceStream(stream stratav1.Broker_ProduceStreamServer) error {
	return rpc.ServeProduceStream(stream, s.Produce, s.holdFlush)
}

// holdFlush counts a produce announced on a stream and not yet received as
// being admitted, so that a flush that would go at once waits for it (see
// flushLoop). The hold ends when that produce is counted itself
// (rpc.ReleaseHold in append), when the stream ends, or after
// FlushInterval, which a flush waits at most anyway.
func (s *Server) holdFlush() (release func()) {
	s.admitting.Add(1)
	var once sync.Once
	end := func() { once.Do(s.endAdmission) }
	t := time.AfterFunc(s.cfg.FlushInterval, end)
	return func() {
		t.Stop()
		end()
	}
}

// endAdmission ends the count of one produce being admitted; an idle
// flusher may be waiting for the last one.
func (s *Server) endAdmission() {
	if s.admitting.Add(-1) == 0 && s.flushesAtOnce() {
		s.kickFlusher()
	}
}
