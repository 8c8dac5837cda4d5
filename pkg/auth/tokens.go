package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
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

// TokenLine returns the token-file line that gives token to principal.
func TokenLine(principal, token string) string { return principal + " " + HashToken(token) }

// parseTokens reads a token file: one "<principal> sha256:<hex>" per line;
// blank lines and lines starting with # are ignored. The result maps the
// hash to the principal.
func parseTokens(b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || !strings.HasPrefix(f[1], hashPrefix) {
			return nil, fmt.Errorf("line %d: want \"<principal> sha256:<hex>\"", n)
		}
		if h, err := hex.DecodeString(strings.TrimPrefix(f[1], hashPrefix)); err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("line %d: bad sha256 hash", n)
		}
		if f[0] == Anonymous || f[0] == "*" {
			return nil, fmt.Errorf("line %d: principal %q is reserved", n, f[0])
		}
		if _, dup := out[f[1]]; dup {
			return nil, fmt.Errorf("line %d: the same token hash appears twice", n)
		}
		out[strings.ToLower(f[1])] = f[0]
	}
	return out, sc.Err()
}

// tokenFile is a token file reloaded when it changes (checked at most once
// per interval, on lookup).
type tokenFile struct {
	path     string
	interval time.Duration
	log      *slog.Logger

	mu        sync.Mutex // guards every field below
	byHash    map[string]string
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
	m, err := parseTokens(b)
	if err != nil {
		return fmt.Errorf("auth: token file %s: %w", t.path, err)
	}
	t.byHash, t.size, t.mod = m, st.Size(), st.ModTime()
	return nil
}

// lookup returns the principal of token, reloading the file first if it
// changed. A failed reload keeps the previous tokens.
func (t *tokenFile) lookup(token string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.checkedAt) >= t.interval {
		t.checkedAt = time.Now()
		if st, err := os.Stat(t.path); err == nil && (st.Size() != t.size || !st.ModTime().Equal(t.mod)) {
			if err := t.reload(); err != nil {
				t.log.Warn("token file reload failed; keeping the loaded tokens", "err", err)
			} else {
				t.log.Info("token file reloaded", "path", t.path, "tokens", len(t.byHash))
			}
		}
	}
	p, ok := t.byHash[HashToken(token)]
	return p, ok
}
