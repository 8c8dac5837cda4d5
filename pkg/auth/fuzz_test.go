package auth

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseTokens feeds arbitrary token files to the parser: it must not
// panic, and what it accepts must hold only well-formed SCRAM credentials
// (iterations at Kafka's floor or above, keys of the hash's size).
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(TokenLine("alice", "tok-alice") + "\n# comment\n" + TokenLine("bob", "tok-bob") + "\n"))
	f.Add([]byte("alice " + HashToken("x") + " scram-sha-256:4096:c2FsdA==:a2V5:a2V5\n"))
	f.Add([]byte("alice sha256:zz\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := parseTokens(b)
		if err != nil {
			return
		}
		for k, c := range set.scram {
			size := scramHashes[k.mech]().Size()
			if c.Iters < minSCRAMIterations || len(c.StoredKey) != size || len(c.ServerKey) != size || c.Salt == "" {
				t.Fatalf("accepted %s credentials of %s: %d iterations, keys %d/%d bytes", k.mech, k.user, c.Iters, len(c.StoredKey), len(c.ServerKey))
			}
		}
	})
}

// FuzzSCRAMExchange feeds arbitrary client messages to a SCRAM exchange
// against real credentials: it must not panic, and must never sign anyone
// in, since a client that does not know the password cannot prove it (nor
// guess the server's random nonce).
func FuzzSCRAMExchange(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL"), []byte("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="))
	f.Add([]byte("n,a=bob,n=alice,r=x"), []byte("c=biws,r=x,p=AAAA"))
	f.Add([]byte("y,,n=alice,r=x,m=ext"), []byte(""))
	path := filepath.Join(f.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(TokenLine("alice", "tok-alice")+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	g, err := New(Config{TokenFile: path})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, mech := range []string{SCRAMSHA256, SCRAMSHA512} {
			x, err := g.StartSCRAM(mech)
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range [][]byte{first, final, final} {
				_, p, done, err := x.Step(msg)
				if done {
					t.Fatalf("%s signed in %+v from fuzzed messages", mech, p)
				}
				if err != nil {
					break
				}
			}
		}
	})
}
