package kafka

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/proxy"
)

// streamConn is a net.Conn that reads a fixed byte stream and discards
// writes.
type streamConn struct{ r *bytes.Reader }

func (s streamConn) Read(b []byte) (int, error)       { return s.r.Read(b) }
func (s streamConn) Write(b []byte) (int, error)      { return len(b), nil }
func (s streamConn) Close() error                     { return nil }
func (s streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s streamConn) SetDeadline(time.Time) error      { return nil }
func (s streamConn) SetReadDeadline(time.Time) error  { return nil }
func (s streamConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzServer is a Server with just what the frame reader and decoder use.
func fuzzServer() *Server {
	cfg := Config{Addr: "127.0.0.1:0", MaxControlRequestBytes: 1 << 20}
	cfg.setDefaults()
	return &Server{
		cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: newMetrics(nil),
		core: proxy.Core{Limits: proxy.Limits{MaxRequestBytes: 4 << 20}},
	}
}

// FuzzFrames feeds arbitrary byte streams to a connection's frame reader
// and request decoder — every API key and version kmsg knows, through
// kmsg's decoders — and checks that nothing panics, that every decoded
// request is one the registry serves, and that a decoded request encodes
// back to a request that decodes the same way.
func FuzzFrames(f *testing.F) {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for key := range int16(100) {
		a, ok := lookupAPI(key)
		if !ok {
			continue
		}
		for v := a.advertisedMin; v <= a.max; v++ {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			f.Add(fm.AppendRequest(nil, req, 1))
		}
	}
	f.Add([]byte{0, 0, 0, 2, 0, 1})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	s := fuzzServer()
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := newConnForFuzz(s, stream)
		for range 16 {
			n, err := c.readSize(false)
			if err != nil {
				return
			}
			frame, err := c.readBody(n)
			if err != nil {
				return
			}
			r, a, err := c.decode(frame)
			if errors.Is(err, errDecodePanic) {
				t.Fatalf("decoder panicked: %v", err)
			}
			if err != nil {
				continue
			}
			if r.unsupported {
				continue
			}
			if r.version < a.advertisedMin || r.version > a.max {
				t.Fatalf("decoded %s v%d outside %d..%d", a.key.Name(), r.version, a.advertisedMin, a.max)
			}
			again := kmsg.RequestForKey(int16(a.key))
			again.SetVersion(r.version)
			enc := r.kreq.AppendTo(nil)
			if err := again.ReadFrom(enc); err != nil {
				t.Fatalf("%s v%d: re-encoded request does not decode: %v", a.key.Name(), r.version, err)
			}
			if !bytes.Equal(again.AppendTo(nil), enc) {
				t.Fatalf("%s v%d: request changes across an encode/decode round trip", a.key.Name(), r.version)
			}
		}
	})
}

func newConnForFuzz(s *Server, stream []byte) *conn {
	return &conn{s: s, nc: streamConn{bytes.NewReader(stream)}, remote: "fuzz"}
}
