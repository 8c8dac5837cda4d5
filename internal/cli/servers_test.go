package cli

import (
	"strings"
	"testing"

	"github.com/strata-mq/strata/pkg/client/clienttest"
)

// TestSeveralServers: --server takes a comma-separated list of proxies;
// with one of them down the command still works through the other, and
// a malformed entry is a usage error naming it.
func TestSeveralServers(t *testing.T) {
	f := clienttest.Start(t)
	f.AddTopic(t, "listed", 1)
	down := f.Serve(t, "127.0.0.1:0")
	down.Stop()
	srv := "--server=" + down.Addr + "," + f.Addr()
	if code, out, stderr := run(t, "", srv, "topic", "list"); code != ExitOK || !strings.Contains(out, "listed") {
		t.Fatalf("topic list through two proxies, one down: exit %d, out %q, stderr %q", code, out, stderr)
	}
	// A host without a port means port 7070, but an empty entry is no
	// address at all.
	code, _, stderr := run(t, "", "--server="+f.Addr()+",", "topic", "list")
	if code == ExitOK || !strings.Contains(stderr, "want host:port") {
		t.Fatalf("malformed list: exit %d, stderr %q", code, stderr)
	}
}
