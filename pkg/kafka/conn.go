package kafka

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/semaphore"

	"github.com/strata-mq/strata/pkg/auth"
)

// request is one decoded request of a connection, as a handler sees it.
type request struct {
	conn *conn
	// key and version are the request header's API key and version.
	key     kmsg.Key
	version int16
	// corr is the correlation id the response echoes.
	corr int32
	// clientID is the header's client id ("" when null).
	clientID string
	// kreq is the decoded body; its version is set.
	kreq kmsg.Request
	// unsupported marks an ApiVersions request of a version the proxy
	// does not serve; its body is not decoded.
	unsupported bool
	// turns are a produce request's places in its partitions' order, one
	// per partition, an offset commit's in its group's, or a transaction
	// coordinator request's in its transactional id's (requestOrder).
	turns []*turn
	// held is what the request's frame holds of the request budgets
	// until it is answered (conn.hold).
	held held
}

// principal returns who sent the request.
func (r *request) principal() auth.Principal { return r.conn.principal() }

// slot is one response position of a connection: responses are written in
// the order of the slots, which is the order of the requests.
type slot struct {
	done chan struct{} // closed when the fields below are set
	corr int32
	// resp is the response; nil writes nothing (acks=0 produce).
	resp kmsg.Response
	// raw, when set, is written as a bare size-prefixed frame: the
	// answer to a SASL token sent after a v0 SaslHandshake.
	raw []byte
	// closeAfter closes the connection once the response is written
	// (failed authentication).
	closeAfter bool
	// err closes the connection instead of writing (a protocol error).
	err error
}

// Smallest request: api key, api version, correlation id and a null
// client id.
const minRequestBytes = 2 + 2 + 4 + 2

// maxUnauthedFrame bounds a frame read before the connection has
// authenticated: only ApiVersions and SASL exchanges come then, and a
// client that has proved nothing may not make the proxy allocate a
// request limit while it sends a frame slowly. 512 KiB is Kafka's
// sasl.server.max.receive.size.
const maxUnauthedFrame = 512 << 10

// conn serves one client connection: a reader that decodes requests in
// order and starts their handlers, and a writer that writes the responses
// in the same order.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	tls    *tls.ConnectionState // nil on plaintext
	// authBy is when an unauthenticated connection must have
	// authenticated (accept time + SASLTimeout).
	authBy time.Time

	ctx    context.Context // requests' context; ends with the connection
	cancel context.CancelFunc
	slots  chan *slot     // responses in request order; its capacity bounds in-flight requests
	hwg    sync.WaitGroup // running handlers
	// inflight bounds the bytes of the requests in processing at once to
	// one request's limit: decoding can multiply a request's size, so a
	// connection may not pile up many large ones. Server.queued bounds
	// all connections together.
	inflight *semaphore.Weighted
	order    requestOrder // plain produces' per-partition order, commits' per group, transactions' per id

	mu sync.Mutex // guards every field below
	// who is the authenticated principal; valid when authed.
	who    auth.Principal
	authed bool
	// saslMech is the mechanism SaslHandshake chose, "" before it.
	saslMech string
	// scram is the SCRAM exchange under way when saslMech is a SCRAM
	// mechanism.
	scram *auth.SCRAMExchange
	// saslRaw: a v0 SaslHandshake succeeded, so the next frame is a bare
	// SASL token, not a request.
	saslRaw bool
	// authedBySASL: SASL authentication succeeded (it happens once).
	authedBySASL bool
	// authFailed: SASL authentication failed; the connection closes
	// after the answer.
	authFailed bool
	// stopping is set by Server.Close: the reader stopped on purpose, so
	// requests in flight still finish and get their responses.
	stopping bool
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s: s, nc: nc, remote: nc.RemoteAddr().String(), slots: make(chan *slot, s.cfg.MaxInflightPerConn),
		authBy: time.Now().Add(s.cfg.SASLTimeout), inflight: semaphore.NewWeighted(int64(s.maxFrame())),
	}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	return c
}

func (c *conn) principal() auth.Principal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.who
}

func (c *conn) isAuthed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authed
}

// setPrincipal records a successful authentication.
func (c *conn) setPrincipal(p auth.Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.who, c.authed = p, true
}

// stop makes the reader end at its next read, leaving requests in flight
// to finish.
func (c *conn) stop() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now())
}

func (c *conn) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// serve runs the connection until the client leaves, a protocol error, or
// Server.Close; it returns once the writer and every handler have ended
// and the connection is closed.
func (c *conn) serve() {
	defer c.nc.Close()
	defer c.cancel()
	if err := c.handshake(); err != nil {
		c.s.log.Debug("kafka: connection refused", "client", c.remote, "err", err)
		return
	}
	var wwg sync.WaitGroup
	wwg.Go(c.writeLoop)
	err := c.readLoop()
	if !c.isStopping() {
		// The client left or broke the protocol: nobody waits for the
		// answers, so end the requests in flight.
		c.cancel()
	}
	c.hwg.Wait()
	close(c.slots)
	wwg.Wait()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !c.isStopping() {
		c.s.metrics.protocolErrors.Inc()
		c.s.log.Info("kafka: closing connection", "client", c.remote, "err", err)
	}
}

// handshake completes TLS (with a deadline) and authenticates what the
// connection itself proves: a verified client certificate, or nothing
// when authentication is off or anonymous access is allowed. Otherwise
// the connection must authenticate with SASL.
func (c *conn) handshake() error {
	g := c.s.core.Guard
	if tc, ok := c.nc.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(c.s.cfg.SASLTimeout))
		if err := tc.HandshakeContext(c.ctx); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		_ = tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		c.tls = &st
	}
	gc := g.Config()
	if !gc.AuthenticationEnabled() || gc.AllowAnonymous || (gc.ClientCerts && c.tls != nil && len(c.tls.VerifiedChains) > 0) {
		p, err := g.Authenticate(auth.Credentials{TLS: c.tls})
		if err == nil {
			c.setPrincipal(p)
		}
	}
	return nil
}

// readLoop reads and dispatches requests until the connection ends. A
// request that arrives before the connection authenticated, and the SASL
// requests themselves, are served one at a time: the next frame's meaning
// depends on their outcome.
func (c *conn) readLoop() error {
	for {
		deadline := time.Now().Add(c.s.cfg.IdleTimeout)
		if !c.isAuthed() {
			deadline = c.authBy
		}
		_ = c.nc.SetReadDeadline(deadline)
		if c.isStopping() { // after the deadline: stop's deadline may have been overwritten
			return nil
		}
		frame, held, err := c.readFrame()
		if err != nil {
			return err
		}
		c.mu.Lock()
		raw := c.saslRaw
		c.saslRaw = false
		c.mu.Unlock()
		sl := &slot{done: make(chan struct{})}
		if raw {
			c.slots <- sl
			c.authenticateRaw(sl, frame)
			c.release(held)
			if sl.closeAfter {
				return nil
			}
			continue
		}
		r, a, err := c.decode(frame)
		if err != nil {
			c.release(held)
			return err
		}
		r.held = held
		sl.corr = r.corr
		if !c.isAuthed() && !preAuth(a.key) {
			c.release(held)
			return fmt.Errorf("%s before authentication: the client must authenticate with SASL first", a.key.Name())
		}
		c.slots <- sl
		switch req := r.kreq.(type) {
		case *kmsg.ProduceRequest:
			r.turns = c.order.claimAll(req)
		case *kmsg.OffsetCommitRequest:
			r.turns = c.order.claim(commitKey(req.Group))
		default:
			if id, ok := txnRequestID(req); ok {
				r.turns = c.order.claim(txnKey(id))
			}
		}
		if !c.isAuthed() || a.key == kmsg.SASLHandshake || a.key == kmsg.SASLAuthenticate {
			c.run(sl, a, r)
			if sl.err != nil || sl.closeAfter {
				return nil // the writer reports it and closes the connection
			}
			continue
		}
		c.hwg.Go(func() { c.run(sl, a, r) })
	}
}

// preAuth reports whether an API may be used before authentication.
func preAuth(k kmsg.Key) bool {
	return k == kmsg.ApiVersions || k == kmsg.SASLHandshake || k == kmsg.SASLAuthenticate
}

// readFrame reads one size-prefixed frame, holding its size in the
// request budgets (hold) before it reads the rest: a client whose request
// does not fit waits, unread, as Kafka mutes a connection past
// queued.max.request.bytes. The caller releases what it holds when the
// request is answered.
func (c *conn) readFrame() ([]byte, held, error) {
	authed := c.isAuthed()
	n, err := c.readSize(authed)
	if err != nil {
		return nil, held{}, err
	}
	h := held{n: n, shared: authed}
	if err := c.hold(h); err != nil {
		return nil, held{}, err
	}
	frame, err := c.readBody(n)
	if err != nil {
		c.release(h)
		return nil, held{}, err
	}
	return frame, h, nil
}

// readSize reads a frame's size and checks it against the request limit,
// or maxUnauthedFrame before authentication.
func (c *conn) readSize(authed bool) (int, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return 0, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	limit, label := c.s.maxFrame(), "request_bytes"
	if !authed && limit > maxUnauthedFrame {
		limit, label = maxUnauthedFrame, "unauthenticated_request_bytes"
	}
	switch {
	case n < 0:
		return 0, fmt.Errorf("frame size %d is negative", n)
	case int64(n) > int64(limit):
		c.s.metrics.rejected.WithLabelValues(label).Inc()
		return 0, fmt.Errorf("request of %d bytes exceeds the limit of %d", n, limit)
	}
	return int(n), nil
}

// held is what a frame holds of the request budgets: n bytes of its
// connection's, and of the server's when shared. Frames read before
// authentication (ApiVersions, SASL; at most maxUnauthedFrame) take none
// of the server's budget, so clients without credentials cannot crowd
// out those with them.
type held struct {
	n      int
	shared bool
}

// hold takes h.n bytes of the connection's budget (one request limit) and
// then, if h.shared, of the server's (MaxQueuedRequestBytes), waiting for
// room in each until the connection ends. A connection holds at most one
// limit of the server's budget, which is at least one limit, so some
// request always proceeds.
func (c *conn) hold(h held) error {
	if err := c.inflight.Acquire(c.ctx, int64(h.n)); err != nil {
		return err
	}
	if !h.shared {
		return nil
	}
	if !c.s.queued.TryAcquire(int64(h.n)) {
		c.s.metrics.queuedWaits.Inc()
		if err := c.s.queued.Acquire(c.ctx, int64(h.n)); err != nil {
			c.inflight.Release(int64(h.n))
			return err
		}
	}
	c.s.metrics.queuedBytes.Add(float64(h.n))
	return nil
}

// release gives back what hold took.
func (c *conn) release(h held) {
	if h.shared {
		c.s.metrics.queuedBytes.Sub(float64(h.n))
		c.s.queued.Release(int64(h.n))
	}
	c.inflight.Release(int64(h.n))
}

// readBody reads a frame of n bytes after its size into a buffer of
// exactly n bytes, allocated before they arrive: what a lying size can
// make the proxy allocate is bounded by the server's budget, or before
// authentication by maxUnauthedFrame a connection.
func (c *conn) readBody(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.nc, b); err != nil {
		return nil, truncated(err)
	}
	return b, nil
}

// truncated turns EOF inside a frame into ErrUnexpectedEOF, which is
// reported, unlike a clean EOF between frames.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// errDecodePanic reports a decoder that panicked on its input.
var errDecodePanic = errors.New("decoding panicked")

// decode parses a frame's request header and body. An API or version the
// proxy does not serve is a protocol error — except ApiVersions, which
// answers any version (see handleApiVersions) — so the connection closes,
// as Apache Kafka closes it.
func (c *conn) decode(frame []byte) (r *request, a api, err error) {
	defer func() {
		if p := recover(); p != nil { // kmsg must not panic on bad input; if it does, the process lives on
			c.s.log.Error("kafka: decoding panicked", "client", c.remote, "panic", p)
			r, err = nil, fmt.Errorf("%w: %v", errDecodePanic, p)
		}
	}()
	if len(frame) < minRequestBytes {
		return nil, api{}, fmt.Errorf("request of %d bytes is shorter than a request header", len(frame))
	}
	rd := kbin.Reader{Src: frame}
	key, version, corr := rd.Int16(), rd.Int16(), rd.Int32()
	cid := rd.NullableString()
	a, ok := lookupAPI(key)
	if !ok {
		return nil, api{}, fmt.Errorf("unsupported API key %d (version %d)", key, version)
	}
	r = &request{conn: c, key: a.key, version: version, corr: corr, kreq: kmsg.RequestForKey(key)}
	if cid != nil {
		r.clientID = *cid
	}
	if a.key != kmsg.Produce && len(frame) > c.s.maxControlFrame() {
		return nil, api{}, fmt.Errorf("%s request of %d bytes exceeds the limit of %d for requests other than Produce", a.key.Name(), len(frame), c.s.maxControlFrame())
	}
	if a.key == kmsg.ApiVersions && (version < a.min || version > a.max) {
		// Answered at v0 with UNSUPPORTED_VERSION and the key list; the
		// body of an unknown version cannot be parsed, and need not be.
		r.unsupported = true
		return r, a, nil
	}
	if version < a.advertisedMin || version > a.max {
		return nil, api{}, fmt.Errorf("%s version %d is not supported (served: %d..%d)", a.key.Name(), version, a.advertisedMin, a.max)
	}
	r.kreq.SetVersion(version)
	if r.kreq.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if !rd.Ok() {
		return nil, api{}, fmt.Errorf("%s v%d: truncated request header", a.key.Name(), version)
	}
	if err := r.kreq.ReadFrom(rd.Src); err != nil {
		return nil, api{}, fmt.Errorf("%s v%d: decode: %w", a.key.Name(), version, err)
	}
	return r, a, nil
}

// run serves one request into its slot.
func (c *conn) run(sl *slot, a api, r *request) {
	defer close(sl.done)
	defer c.release(r.held)
	start := time.Now()
	resp, err := c.handle(a, r)
	c.s.metrics.observe(a.key, start, err)
	if err != nil {
		sl.err = fmt.Errorf("%s v%d: %w", a.key.Name(), r.version, err)
		return
	}
	sl.resp = resp // at the request's version: handlers build it with ResponseKind
	c.mu.Lock()
	sl.closeAfter = c.authFailed
	c.mu.Unlock()
}

// handle waits for the proxy's metadata, then calls the API's handler. A
// panicking handler closes the connection and is logged; the process
// lives on.
func (c *conn) handle(a api, r *request) (resp kmsg.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("kafka: handler panicked", "api", a.key.Name(), "version", r.version, "client", c.remote, "panic", p)
			resp, err = nil, fmt.Errorf("internal error")
		}
	}()
	if a.key != kmsg.ApiVersions {
		if err := c.s.core.WaitReady(c.ctx); err != nil {
			return nil, err
		}
	}
	if _, ok := txnRequestID(r.kreq); ok && len(r.turns) == 1 {
		// The id's earlier requests on this connection are served first:
		// a client may send EndTxn right behind AddPartitionsToTxn.
		defer r.turns[0].done()
		if err := r.turns[0].wait(c.ctx); err != nil {
			return nil, err
		}
	}
	return a.handle(c.s, c.ctx, r)
}

// writeLoop writes each slot's response once it is done, in order, until
// the slots channel closes. After a write fails it keeps draining, so the
// reader and handlers never block on it.
func (c *conn) writeLoop() {
	var buf []byte
	failed := false
	for sl := range c.slots {
		<-sl.done
		if failed {
			continue
		}
		switch {
		case sl.err != nil:
			c.s.metrics.protocolErrors.Inc()
			c.s.log.Info("kafka: closing connection", "client", c.remote, "err", sl.err)
			failed = true
		case sl.raw != nil:
			buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(sl.raw)))
			buf = append(buf, sl.raw...)
		case sl.resp != nil:
			buf = appendResponse(buf[:0], sl.corr, sl.resp)
		default:
			continue
		}
		if !failed {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
			if _, err := c.nc.Write(buf); err != nil {
				failed = true
			}
		}
		if failed || sl.closeAfter {
			failed = true
			c.cancel()
			_ = c.nc.Close() // ends the reader
		}
	}
}

// appendResponse appends a response frame: size, correlation id, the
// response header's tags (flexible versions, except ApiVersions whose
// response header is always v0) and the body.
func appendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}
