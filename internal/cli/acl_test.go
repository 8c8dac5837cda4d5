package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-mq/strata/pkg/auth"
)

// TestACLToken: `strata acl token` prints a token and a token-file line
// that the proxy's Guard accepts, for bearer tokens (and SASL/PLAIN) and
// for SCRAM, whose mechanisms the line gives credentials for.
func TestACLToken(t *testing.T) {
	code, out, errOut := run(t, "", "acl", "token", "app")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var token, line string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if v, ok := strings.CutPrefix(l, "token: "); ok {
			token = v
		}
		if v, ok := strings.CutPrefix(l, "token file line: "); ok {
			line = v
		}
	}
	if token == "" || line == "" {
		t.Fatalf("output %q lacks the token or its line", out)
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := auth.New(auth.Config{TokenFile: path})
	if err != nil {
		t.Fatalf("the printed line does not load: %v", err)
	}
	if p, err := g.Authenticate(auth.Credentials{Token: token}); err != nil || p.Name != "app" {
		t.Fatalf("the printed token: %+v, %v; want principal app", p, err)
	}
	if n := len(strings.Fields(line)); n != 4 {
		t.Fatalf("line has %d fields, want principal, hash and two SCRAM credentials: %q", n, line)
	}
	for _, bad := range []string{"", "a b", "*", auth.Anonymous} {
		if code, _, _ := run(t, "", "acl", "token", bad); code != 2 {
			t.Errorf("acl token %q: exit %d, want 2 (usage)", bad, code)
		}
	}
}
