package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"

	"github.com/strata-mq/strata/pkg/apierr"
)

// The SCRAM mechanisms (RFC 5802, RFC 7677) a token can sign in with, by
// their SASL names.
const (
	SCRAMSHA256 = "SCRAM-SHA-256"
	SCRAMSHA512 = "SCRAM-SHA-512"
)

// scramMechanisms are the mechanisms TokenLine writes credentials for, in
// order.
var scramMechanisms = []string{SCRAMSHA256, SCRAMSHA512}

// scramHashes are the hash functions of the SCRAM mechanisms.
var scramHashes = map[string]scram.HashGeneratorFcn{SCRAMSHA256: scram.SHA256, SCRAMSHA512: scram.SHA512}

// SCRAMIterations is the PBKDF2 iteration count of the credentials
// TokenLine writes: Kafka's minimum and the default of its tools. Tokens
// are random and long, so more iterations would protect nothing and only
// slow each sign-in.
const SCRAMIterations = 4096

// minSCRAMIterations is the lowest iteration count a token file may give
// (Kafka's floor).
const minSCRAMIterations = 4096

// scramSaltBytes is the length of a fresh salt.
const scramSaltBytes = 24

// scramKey names one principal's credentials for one mechanism.
type scramKey struct{ mech, user string }

// SCRAMMechanisms returns the SASL names of the SCRAM mechanisms the
// Guard serves: none without a token file, which holds the credentials.
func (g *Guard) SCRAMMechanisms() []string {
	if g.tokens == nil {
		return nil
	}
	return slices.Clone(scramMechanisms)
}

// SCRAMCredential describes one SCRAM credential of a user: its mechanism
// and iteration count, never its salt or keys.
type SCRAMCredential struct {
	Mechanism  string
	Iterations int
}

// SCRAMUsers returns the SCRAM credentials the token file holds, by user,
// each user's in the order of SCRAMMechanisms; nil without a token file.
func (g *Guard) SCRAMUsers() map[string][]SCRAMCredential {
	if g.tokens == nil {
		return nil
	}
	set := g.tokens.current()
	out := map[string][]SCRAMCredential{}
	for _, mech := range scramMechanisms {
		for k, c := range set.scram {
			if k.mech == mech {
				out[k.user] = append(out[k.user], SCRAMCredential{Mechanism: mech, Iterations: c.Iters})
			}
		}
	}
	return out
}

// newSCRAMField derives user's credentials for mech from password and
// returns them in token-file form:
// "scram-sha-256:<iterations>:<salt>:<stored key>:<server key>", the last
// three in standard base64.
func newSCRAMField(mech, user, password string) (string, error) {
	salt := make([]byte, scramSaltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	client, err := scramHashes[mech].NewClient(user, password, "")
	if err != nil {
		return "", fmt.Errorf("auth: %s credentials: %w", mech, err)
	}
	cred, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: SCRAMIterations})
	if err != nil {
		return "", fmt.Errorf("auth: %s credentials: %w", mech, err)
	}
	b64 := base64.StdEncoding.EncodeToString
	return strings.Join([]string{strings.ToLower(mech), strconv.Itoa(cred.Iters), b64(salt), b64(cred.StoredKey), b64(cred.ServerKey)}, ":"), nil
}

// parseSCRAMField reads the credentials newSCRAMField writes.
func parseSCRAMField(field string) (string, scram.StoredCredentials, error) {
	parts := strings.Split(field, ":")
	mech := strings.ToUpper(parts[0])
	hash, known := scramHashes[mech]
	if !known || len(parts) != 5 {
		return "", scram.StoredCredentials{}, fmt.Errorf("field %q: want scram-sha-256:<iterations>:<salt>:<stored key>:<server key> (or scram-sha-512)", abbreviate(field))
	}
	iters, err := strconv.Atoi(parts[1])
	if err != nil || iters < minSCRAMIterations {
		return "", scram.StoredCredentials{}, fmt.Errorf("%s: iterations %q: want a number of at least %d", mech, parts[1], minSCRAMIterations)
	}
	var raw [3][]byte
	for i, p := range parts[2:] {
		if raw[i], err = base64.StdEncoding.DecodeString(p); err != nil || len(raw[i]) == 0 {
			return "", scram.StoredCredentials{}, fmt.Errorf("%s: %s is not base64", mech, []string{"salt", "stored key", "server key"}[i])
		}
	}
	if size := hash().Size(); len(raw[1]) != size || len(raw[2]) != size {
		return "", scram.StoredCredentials{}, fmt.Errorf("%s: keys must be %d bytes", mech, size)
	}
	return mech, scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(raw[0]), Iters: iters},
		StoredKey: raw[1], ServerKey: raw[2]}, nil
}

// abbreviate shortens a token-file field for an error message.
func abbreviate(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// SCRAMExchange is one SCRAM sign-in, server side, against the SCRAM
// credentials of the token file. A front end feeds it the client's
// messages in order; it is not safe for concurrent use.
type SCRAMExchange struct {
	g    *Guard
	mech string
	conv *scram.ServerConversation
}

// StartSCRAM begins a SCRAM sign-in with mechanism mech (SCRAMSHA256 or
// SCRAMSHA512). It fails, wrapping apierr.ErrUnauthenticated, when the
// Guard has no token file to hold credentials.
func (g *Guard) StartSCRAM(mech string) (*SCRAMExchange, error) {
	hash, known := scramHashes[mech]
	if !known {
		return nil, apierr.Errorf(apierr.ErrUnauthenticated, "SCRAM mechanism %q is not served (%s)", mech, strings.Join(scramMechanisms, ", "))
	}
	if g.tokens == nil {
		return nil, apierr.Errorf(apierr.ErrUnauthenticated, "%s needs credentials in a token file, and none is configured", mech)
	}
	srv, err := hash.NewServer(func(user string) (scram.StoredCredentials, error) {
		if c, ok := g.tokens.lookupSCRAM(mech, user); ok {
			return c, nil
		}
		return scram.StoredCredentials{}, fmt.Errorf("no %s credentials for user %q in the token file", mech, user)
	})
	if err != nil {
		return nil, err
	}
	return &SCRAMExchange{g: g, mech: mech, conv: srv.NewConversation()}, nil
}

// Step takes the client's next message and returns the answer to send.
// After the client's final message it also returns the signed-in
// principal (done). A failure wraps apierr.ErrUnauthenticated; the
// front end answers it with its authentication error and closes.
func (x *SCRAMExchange) Step(msg []byte) (reply []byte, p Principal, done bool, err error) {
	out, err := x.conv.Step(string(msg))
	if err == nil && x.conv.AuthzID() != "" && x.conv.AuthzID() != x.conv.Username() {
		err = fmt.Errorf("authorization id %q is not the user %q", x.conv.AuthzID(), x.conv.Username())
	}
	if err != nil {
		x.count("failed")
		x.g.log.Info("SCRAM authentication failed", "mechanism", x.mech, "user", x.conv.Username(), "err", err)
		return nil, Principal{}, false, apierr.Errorf(apierr.ErrUnauthenticated, "%s: %v", x.mech, err)
	}
	if !x.conv.Done() {
		return []byte(out), Principal{}, false, nil
	}
	if !x.conv.Valid() {
		x.count("failed")
		return nil, Principal{}, false, apierr.Errorf(apierr.ErrUnauthenticated, "%s: proof not valid", x.mech)
	}
	x.count("ok")
	return []byte(out), Principal{Name: x.conv.Username(), Method: MethodSCRAM}, true, nil
}

// count records the exchange's outcome with the other authentications.
func (x *SCRAMExchange) count(result string) {
	x.g.metrics.authn.WithLabelValues(MethodSCRAM, result).Inc()
}
