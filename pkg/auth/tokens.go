package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/xdg-go/scram"
)

// hashPrefix marks a token hash in the token file.
const hashPrefix = "sha256:"

// tokenPrefix starts every token NewToken makes, so that leaked tokens are
// easy to find with secret scanners.
const tokenPrefix = "stk_"

// NewToken returns a new random bearer token (32 random bytes).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken returns the form a token is stored in: "sha256:<hex>". Tokens
// are random and long, so a plain (unsalted) SHA-256 cannot be reversed.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// TokenLine returns the token-file line that gives token to principal:
// its hash, then SCRAM-SHA-256 and SCRAM-SHA-512 credentials derived from
// it (a fresh salt each), so that Kafka clients may also sign in with
// SCRAM, the token as password. A token SASLprep refuses (only a
// hand-made one can be) gets no SCRAM credentials.
func TokenLine(principal, token string) string {
	line := principal + " " + HashToken(token)
	for _, mech := range scramMechanisms {
		if f, err := newSCRAMField(mech, principal, token); err == nil {
			line += " " + f
		}
	}
	return line
}

// tokenSet is a parsed token file.
type tokenSet struct {
	// byHash maps a token hash to its principal.
	byHash map[string]string
	// scram holds the SCRAM credentials of each mechanism and principal.
	scram map[scramKey]scram.StoredCredentials
}

// parseTokens reads a token file: one "<principal> sha256:<hex>" per line,
// optionally followed by SCRAM credentials ("scram-sha-256:…",
// "scram-sha-512:…"); blank lines and lines starting with # are ignored.
func parseTokens(b []byte) (tokenSet, error) {
	out := tokenSet{byHash: map[string]string{}, scram: map[scramKey]scram.StoredCredentials{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := out.parseLine(line); err != nil {
			return tokenSet{}, fmt.Errorf("line %d: %w", n, err)
		}
	}
	return out, sc.Err()
}

// parseLine adds one line of a token file.
func (ts tokenSet) parseLine(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[1], hashPrefix) {
		return errors.New("want \"<principal> sha256:<hex> [scram-sha-256:…] [scram-sha-512:…]\"")
	}
	principal, hash := f[0], strings.ToLower(f[1])
	if h, err := hex.DecodeString(strings.TrimPrefix(hash, hashPrefix)); err != nil || len(h) != sha256.Size {
		return errors.New("bad sha256 hash")
	}
	if principal == Anonymous || principal == "*" {
		return fmt.Errorf("principal %q is reserved", principal)
	}
	if _, dup := ts.byHash[hash]; dup {
		return errors.New("the same token hash appears twice")
	}
	ts.byHash[hash] = principal
	for _, field := range f[2:] {
		mech, cred, err := parseSCRAMField(field)
		if err != nil {
			return err
		}
		k := scramKey{mech: mech, user: principal}
		if _, dup := ts.scram[k]; dup {
			return fmt.Errorf("principal %s has %s credentials twice", principal, mech)
		}
		ts.scram[k] = cred
	}
	return nil
}

// tokenFile is a token file reloaded when it changes (checked at most once
// per interval, on lookup).
type tokenFile struct {
	path     string
	interval time.Duration
	log      *slog.Logger

	mu        sync.Mutex // guards every field below
	set       tokenSet
	size      int64
	mod       time.Time
	checkedAt time.Time
}

func loadTokenFile(path string, interval time.Duration, log *slog.Logger) (*tokenFile, error) {
	t := &tokenFile{path: path, interval: interval, log: log}
	if err := t.reload(); err != nil {
		return nil, err
	}
	t.checkedAt = time.Now()
	return t, nil
}

// reload reads the file. t.mu must be held, or t not yet shared.
func (t *tokenFile) reload() error {
	st, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("auth: token file: %w", err)
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("auth: token file: %w", err)
	}
	set, err := parseTokens(b)
	if err != nil {
		return fmt.Errorf("auth: token file %s: %w", t.path, err)
	}
	t.set, t.size, t.mod = set, st.Size(), st.ModTime()
	return nil
}

// current returns the tokens, reloading the file first if it changed
// (checked at most once per interval). A failed reload keeps the
// previous tokens.
func (t *tokenFile) current() tokenSet {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.checkedAt) >= t.interval {
		t.checkedAt = time.Now()
		if st, err := os.Stat(t.path); err == nil && (st.Size() != t.size || !st.ModTime().Equal(t.mod)) {
			if err := t.reload(); err != nil {
				t.log.Warn("token file reload failed; keeping the loaded tokens", "err", err)
			} else {
				t.log.Info("token file reloaded", "path", t.path, "tokens", len(t.set.byHash))
			}
		}
	}
	return t.set
}

// lookup returns the principal of token.
func (t *tokenFile) lookup(token string) (string, bool) {
	p, ok := t.current().byHash[HashToken(token)]
	return p, ok
}

// lookupSCRAM returns user's credentials for mechanism mech.
func (t *tokenFile) lookupSCRAM(mech, user string) (scram.StoredCredentials, bool) {
	c, ok := t.current().scram[scramKey{mech: mech, user: user}]
	return c, ok
}
