package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-mq/strata/internal/bench"
	"github.com/strata-mq/strata/pkg/client/clienttest"
)

// TestBenchCommands runs each bench command briefly: produce, e2e and
// consume against an in-memory proxy, s3 against a directory store, and
// plot over their JSON summaries.
func TestBenchCommands(t *testing.T) {
	f := clienttest.Start(t)
	dir := t.TempDir()
	srv := "--server=" + f.Addr()
	runs := []struct {
		name string
		args []string
	}{
		{"produce", []string{srv, "bench", "produce", "--duration", "1200ms", "--record-size", "100", "--rate", "2000", "--json", "--plot", filepath.Join(dir, "produce")}},
		{"e2e", []string{srv, "bench", "e2e", "--duration", "1200ms", "--inflight", "1", "--json"}},
		{"consume", []string{srv, "bench", "consume", "--json"}},
		{"s3", []string{"bench", "s3", "--data-dir", filepath.Join(dir, "store"), "--object-size", "65536", "--duration", "1s", "--json"}},
	}
	var files []string
	for _, r := range runs {
		code, out, stderr := run(t, "", r.args...)
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", r.name, code, stderr)
		}
		var s bench.Summary
		if err := json.Unmarshal([]byte(out), &s); err != nil || s.Kind != r.name || s.Ops == 0 {
			t.Fatalf("%s: summary %+v, %v", r.name, s, err)
		}
		if !strings.Contains(stderr, "/s") {
			t.Fatalf("%s: no progress lines: %q", r.name, stderr)
		}
		file := filepath.Join(dir, r.name+".json")
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, r.name+"="+file)
	}
	if _, err := os.Stat(filepath.Join(dir, "produce-latency.png")); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "cmp.png")
	if code, _, stderr := run(t, "", append([]string{"bench", "plot", "--out", png}, files...)...); code != ExitOK {
		t.Fatalf("plot: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(png); err != nil {
		t.Fatal(err)
	}
	// Bad flags are usage errors.
	if code, _, _ := run(t, "", srv, "bench", "produce", "--record-size", "2"); code != ExitUsage {
		t.Fatalf("tiny record: exit %d, want usage", code)
	}
	if code, _, _ := run(t, "", "bench", "s3"); code != ExitUsage {
		t.Fatalf("s3 without a store: exit %d, want usage", code)
	}
	if code, _, _ := run(t, "", "bench", "etcd", "--concurrency", "0"); code != ExitUsage {
		t.Fatalf("etcd with no commits in flight: exit %d, want usage", code)
	}
}
