package kafka

import (
	"bytes"
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
)

// SaslHandshake v0–1 and SaslAuthenticate v0–2: SASL/PLAIN whose password
// is a Strata token (docs/security.md). The token names the principal, as
// a gRPC bearer token does; the PLAIN user name must be that principal, so
// a client cannot believe it is someone else. A v0 handshake is followed
// by a bare token frame (authenticateRaw), v1 by SaslAuthenticate.
// Authentication happens once per connection: re-authentication (KIP-368)
// is not offered (session lifetime 0).
func init() {
	register(kmsg.SASLHandshake, 0, 1, (*Server).handleSaslHandshake)
	register(kmsg.SASLAuthenticate, 0, 2, (*Server).handleSaslAuthenticate)
}

// mechPlain is the one SASL mechanism served.
const mechPlain = "PLAIN"

func (s *Server) handleSaslHandshake(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = []string{mechPlain}
	c := r.conn
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.saslMech != "":
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case req.Mechanism != mechPlain:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	default:
		c.saslMech = mechPlain
		c.saslRaw = req.Version == 0
	}
	return resp, nil
}

func (s *Server) handleSaslAuthenticate(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c := r.conn
	c.mu.Lock()
	mech, done := c.saslMech, c.authedBySASL
	c.mu.Unlock()
	if mech == "" || done {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = errMsg(fmt.Errorf("SaslAuthenticate needs a SaslHandshake first, once per connection"))
		return resp, nil
	}
	if err := c.authenticatePlain(req.SASLAuthBytes); err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = errMsg(err)
		r.conn.failAuth()
	}
	return resp, nil
}

// authenticateRaw answers a bare SASL/PLAIN token that follows a v0
// handshake: an empty frame on success; on failure Kafka closes the
// connection without an answer.
func (c *conn) authenticateRaw(sl *slot, token []byte) {
	defer close(sl.done)
	if err := c.authenticatePlain(token); err != nil {
		sl.err = err
		sl.closeAfter = true
		return
	}
	sl.raw = []byte{}
}

// authenticatePlain checks a SASL/PLAIN message ("authzid\0user\0token")
// with the Guard and makes its principal the connection's.
func (c *conn) authenticatePlain(msg []byte) error {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return fmt.Errorf("%w: malformed SASL/PLAIN message", apierr.ErrUnauthenticated)
	}
	authz, user, token := string(parts[0]), string(parts[1]), string(parts[2])
	if token == "" {
		return fmt.Errorf("%w: SASL/PLAIN password is empty; it must be a Strata token", apierr.ErrUnauthenticated)
	}
	p, err := c.s.core.Guard.Authenticate(auth.Credentials{Token: token, TLS: c.tls})
	if err != nil {
		c.s.log.Info("kafka: SASL authentication failed", "client", c.remote, "user", user, "err", err)
		return err
	}
	if p.Method == auth.MethodToken && (user != p.Name || (authz != "" && authz != p.Name)) {
		c.s.log.Info("kafka: SASL user does not match the token's principal", "client", c.remote, "user", user)
		return fmt.Errorf("%w: SASL/PLAIN user %q is not the principal of the token", apierr.ErrUnauthenticated, user)
	}
	c.mu.Lock()
	c.who, c.authed, c.authedBySASL = p, true, true
	c.mu.Unlock()
	return nil
}

// failAuth closes the connection once the failed SaslAuthenticate answer
// is written, as Kafka does.
func (c *conn) failAuth() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.authFailed = true
}
