package auth

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mq/strata/pkg/apierr"
)

// signIn runs a client's SCRAM conversation against the Guard and returns
// the principal it signed in as.
func signIn(t *testing.T, g *Guard, mech, user, password, authz string) (Principal, error) {
	t.Helper()
	x, err := g.StartSCRAM(mech)
	if err != nil {
		return Principal{}, err
	}
	cl, err := scramHashes[mech].NewClient(user, password, authz)
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	var in string
	for range 3 {
		out, err := conv.Step(in)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		reply, p, done, err := x.Step([]byte(out))
		if err != nil {
			return Principal{}, err
		}
		if done {
			// The client checks the server's signature: it proves that
			// the server holds the credentials.
			if _, err := conv.Step(string(reply)); err != nil || !conv.Valid() {
				t.Fatalf("client does not accept the server's final message: %v", err)
			}
			return p, nil
		}
		in = string(reply)
	}
	t.Fatal("the exchange did not end after two client messages")
	return Principal{}, nil
}

// TestSCRAM signs in with SCRAM-SHA-256 and -512, the token as password,
// against the credentials TokenLine wrote, and checks each refusal: a
// wrong password, an unknown user, a user whose line has no SCRAM
// credentials, an authorization id of someone else, no token file.
func TestSCRAM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	lines := TokenLine("alice", tok) + "\n" + strings.Join(strings.Fields(TokenLine("bob", "tok-bob"))[:2], " ") + "\n"
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{TokenFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.SCRAMMechanisms(); !slices.Equal(got, []string{SCRAMSHA256, SCRAMSHA512}) {
		t.Fatalf("SCRAM mechanisms offered: %v", got)
	}
	for _, mech := range g.SCRAMMechanisms() {
		t.Run(mech, func(t *testing.T) {
			p, err := signIn(t, g, mech, "alice", tok, "")
			if err != nil || p.Name != "alice" || p.Method != MethodSCRAM {
				t.Fatalf("sign-in: %+v, %v; want alice by %s", p, err, MethodSCRAM)
			}
			if p, err := signIn(t, g, mech, "alice", tok, "alice"); err != nil || p.Name != "alice" {
				t.Fatalf("sign-in with her own authorization id: %+v, %v", p, err)
			}
			for _, tc := range []struct{ name, user, password, authz string }{
				{"wrong password", "alice", tok + "x", ""},
				{"unknown user", "carol", tok, ""},
				{"no SCRAM credentials on the line", "bob", "tok-bob", ""},
				{"authorization id of another", "alice", tok, "bob"},
			} {
				if p, err := signIn(t, g, mech, tc.user, tc.password, tc.authz); !errors.Is(err, apierr.ErrUnauthenticated) {
					t.Errorf("%s: %+v, %v; want unauthenticated", tc.name, p, err)
				}
			}
		})
	}
	noFile, err := New(Config{ClientCerts: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := noFile.SCRAMMechanisms(); len(m) != 0 {
		t.Fatalf("without a token file SCRAM is offered: %v", m)
	}
	if _, err := noFile.StartSCRAM(SCRAMSHA256); !errors.Is(err, apierr.ErrUnauthenticated) {
		t.Fatalf("without a token file: %v, want unauthenticated", err)
	}
	if _, err := g.StartSCRAM("SCRAM-SHA-1"); !errors.Is(err, apierr.ErrUnauthenticated) {
		t.Fatalf("SCRAM-SHA-1: %v, want unauthenticated", err)
	}
}
