package kafka

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
)

// SaslHandshake v0–1 and SaslAuthenticate v0–2: SASL/PLAIN and
// SCRAM-SHA-256/512, each with a Strata token as the password
// (docs/security.md). The token names the principal, as a gRPC bearer
// token does; the PLAIN or SCRAM user name must be that principal, so a
// client cannot believe it is someone else. SCRAM checks the credentials
// the token file holds for the user (auth.TokenLine writes them), and is
// offered only with a token file. A v0 handshake is followed by bare
// SASL frames (authenticateRaw), v1 by SaslAuthenticate requests.
// Authentication happens once per connection: re-authentication (KIP-368)
// is not offered (session lifetime 0).
func init() {
	register(kmsg.SASLHandshake, 0, 1, (*Server).handleSaslHandshake)
	register(kmsg.SASLAuthenticate, 0, 2, (*Server).handleSaslAuthenticate)
}

// mechPlain is SASL/PLAIN; the SCRAM mechanisms come from the Guard.
const mechPlain = "PLAIN"

func (s *Server) handleSaslHandshake(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.SupportedMechanisms = append([]string{mechPlain}, s.core.Guard.SCRAMMechanisms()...)
	c := r.conn
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.saslMech != "":
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case !slices.Contains(resp.SupportedMechanisms, req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	case req.Mechanism == mechPlain:
		c.saslMech, c.saslRaw = mechPlain, req.Version == 0
	default:
		x, err := s.core.Guard.StartSCRAM(req.Mechanism)
		if err != nil {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
			break
		}
		c.saslMech, c.saslRaw, c.scram = req.Mechanism, req.Version == 0, x
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
	reply, err := c.authenticate(req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = errMsg(err)
		r.conn.failAuth()
	}
	resp.SASLAuthBytes = reply
	return resp, nil
}

// authenticateRaw answers a bare SASL frame that follows a v0 handshake:
// with the mechanism's answer (empty for PLAIN) on success, the next
// frame bare again while a SCRAM exchange goes on; on failure Kafka
// closes the connection without an answer.
func (c *conn) authenticateRaw(sl *slot, msg []byte) {
	defer close(sl.done)
	reply, err := c.authenticate(msg)
	if err != nil {
		sl.err = err
		sl.closeAfter = true
		return
	}
	sl.raw = append([]byte{}, reply...)
	c.mu.Lock()
	c.saslRaw = !c.authedBySASL
	c.mu.Unlock()
}

// authenticate takes the client's next SASL message for the mechanism
// the handshake chose and returns the answer to it.
func (c *conn) authenticate(msg []byte) ([]byte, error) {
	c.mu.Lock()
	x := c.scram
	c.mu.Unlock()
	if x == nil {
		return nil, c.authenticatePlain(msg)
	}
	reply, p, done, err := x.Step(msg)
	if err != nil {
		c.s.log.Info("kafka: SASL authentication failed", "client", c.remote, "err", err)
		return nil, err
	}
	if done {
		c.signedIn(p)
	}
	return reply, nil
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
	c.signedIn(p)
	return nil
}

// signedIn makes p the connection's principal.
func (c *conn) signedIn(p auth.Principal) {
	c.mu.Lock()
	c.who, c.authed, c.authedBySASL = p, true, true
	c.mu.Unlock()
}

// failAuth closes the connection once the failed SaslAuthenticate answer
// is written, as Kafka does.
func (c *conn) failAuth() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.authFailed = true
}
