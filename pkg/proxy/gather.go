package proxy

import (
	"context"
	"sync"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

// gatherWait bounds how long the first messages of a request's parts wait
// for the rest. The parts are routed side by side in microseconds; a part
// still missing after this is doing something slower (waiting for the
// view to show its topic, for a transaction check, for its turn), and the
// others go without it.
var gatherWait = time.Millisecond

// ProduceGather gathers the produces of one client request (a ProduceMany,
// a Kafka Produce of several partitions) on their way to the brokers. Its
// parts run side by side, and each would otherwise send its message to
// its broker's stream as soon as it is routed: a broker with no flush in
// flight then cuts the first alone and the rest into a second object. The
// gather holds each part's first message until every part has made its
// first attempt (or gatherWait passes), then queues the messages for each
// stream together, each but the last marked more, which tells the broker
// that another produce follows at once.
type ProduceGather struct {
	mu      sync.Mutex // guards the fields below
	left    int        // parts that have not made their first attempt
	held    []heldSend
	timer   *time.Timer // sends the held messages after gatherWait
	settled bool        // the held messages went; later ones go at once
}

// heldSend is a part's first message, held for its gather.
type heldSend struct {
	f   *forwarder
	st  *fwdStream
	msg *stratav1.ProduceStreamRequest
}

// gatherPart is one part of a ProduceGather, carried in its context.
type gatherPart struct {
	g       *ProduceGather
	arrived bool // guarded by g.mu
}

type gatherPartKey struct{}

// NewProduceGather returns the gather of a request of n parts.
func NewProduceGather(n int) *ProduceGather {
	return &ProduceGather{left: n}
}

// Part returns the context for one part's Router.Produce, and done, which
// the part calls when its produce returns. Each of its n parts
// takes one.
func (g *ProduceGather) Part(ctx context.Context) (context.Context, func()) {
	p := &gatherPart{g: g}
	return context.WithValue(ctx, gatherPartKey{}, p), func() { g.arrive(p, nil) }
}

// GoAlone tells the gather of ctx's part, if any, that the part sends
// nothing to hold now (it failed, goes as a call of its own, or waits for
// something first): the others go without it.
func GoAlone(ctx context.Context) {
	if p, ok := ctx.Value(gatherPartKey{}).(*gatherPart); ok {
		p.g.arrive(p, nil)
	}
}

// hold holds h, the first message of the part of ctx, for its gather, and
// reports whether it did; when it did not, the caller sends h itself.
func hold(ctx context.Context, h heldSend) bool {
	p, ok := ctx.Value(gatherPartKey{}).(*gatherPart)
	return ok && p.g.arrive(p, &h)
}

// arrive counts p's first attempt, holding h if it is not nil and the
// gather has not settled, and sends the held messages once every part has
// arrived. It reports whether it held h.
func (g *ProduceGather) arrive(p *gatherPart, h *heldSend) bool {
	g.mu.Lock()
	if p.arrived || g.settled {
		g.mu.Unlock()
		return false
	}
	p.arrived = true
	g.left--
	last := g.left == 0
	if h != nil {
		g.held = append(g.held, *h)
		if g.timer == nil && !last {
			g.timer = time.AfterFunc(gatherWait, g.settle)
		}
	}
	g.mu.Unlock()
	if last {
		g.settle()
	}
	return h != nil
}

// settle sends the held messages, each stream's together, and lets later
// messages go at once.
func (g *ProduceGather) settle() {
	g.mu.Lock()
	if g.settled {
		g.mu.Unlock()
		return
	}
	g.settled = true
	held := g.held
	g.held = nil
	if g.timer != nil {
		g.timer.Stop()
	}
	g.mu.Unlock()
	for len(held) > 0 {
		first := held[0]
		var same, rest []heldSend
		for _, h := range held {
			if h.st == first.st {
				same = append(same, h)
			} else {
				rest = append(rest, h)
			}
		}
		msgs := make([]*stratav1.ProduceStreamRequest, len(same))
		for i, h := range same {
			msgs[i] = h.msg
		}
		first.f.sendGroup(first.st, msgs)
		held = rest
	}
}
