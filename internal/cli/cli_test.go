package cli

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/strata-mq/strata/pkg/client/clienttest"
)

// run runs the strata command line args with stdin and returns the exit
// code, stdout and stderr.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &App{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}
	code := a.Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

func TestArgs(t *testing.T) {
	f := clienttest.Start(t)
	f.AddTopic(t, "t", 2)
	srv := "--server=" + f.Addr()
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", nil, ExitUsage, "Usage: strata"},
		{"unknown command", []string{"bogus"}, ExitUsage, `unknown command "bogus"`},
		{"unknown subcommand", []string{"topic", "bogus"}, ExitUsage, `strata topic: unknown command "bogus"`},
		{"unknown flag", []string{srv, "topic", "list", "--bogus"}, ExitUsage, "flag provided but not defined"},
		{"create without name", []string{srv, "topic", "create"}, ExitUsage, "missing topic name"},
		{"create zero partitions", []string{srv, "topic", "create", "x", "--partitions", "0"}, ExitUsage, "--partitions"},
		{"create bad retention", []string{srv, "topic", "create", "x", "--retention", "soon"}, ExitUsage, "invalid value"},
		{"create existing", []string{srv, "topic", "create", "t"}, ExitError, "already exists"},
		{"create invalid name", []string{srv, "topic", "create", "bad name"}, ExitError, "invalid topic"},
		{"describe unknown", []string{srv, "topic", "describe", "nope"}, ExitError, "unknown topic"},
		{"delete unknown", []string{srv, "topic", "delete", "nope"}, ExitError, "unknown topic"},
		{"extra argument", []string{srv, "topic", "list", "x"}, ExitUsage, `unexpected argument "x"`},
		{"consume without topic", []string{srv, "consume"}, ExitUsage, "missing topic"},
		{"consume bad partition", []string{srv, "consume", "t", "--partition", "-5"}, ExitUsage, "--partition"},
		{"consume not a number", []string{srv, "consume", "t", "--partition", "one"}, ExitUsage, "invalid value"},
		{"consume conflicting start", []string{srv, "consume", "t", "--from-beginning", "--offset", "3"}, ExitUsage, "exclude each other"},
		{"consume negative offset", []string{srv, "consume", "t", "--offset", "-3"}, ExitUsage, "--offset"},
		{"consume bad duration", []string{srv, "consume", "t", "--timeout", "5"}, ExitUsage, "invalid value"},
		{"consume bad template", []string{srv, "consume", "t", "--format", "{{.Nope}}"}, ExitUsage, "--format"},
		{"consume unknown topic", []string{srv, "consume", "nope", "--timeout", "5s"}, ExitError, "unknown topic"},
		{"consume unknown topic partition", []string{srv, "consume", "nope", "--partition", "0", "--timeout", "5s"}, ExitError, "unknown topic"},
		{"produce without topic", []string{srv, "produce"}, ExitUsage, "missing topic"},
		{"produce bad codec", []string{srv, "produce", "t", "--codec", "brotli"}, ExitUsage, "--codec"},
		{"produce unknown topic", []string{srv, "produce", "nope"}, ExitError, "unknown topic"},
		{"produce partition out of range", []string{srv, "produce", "t", "--partition", "2"}, ExitError, "partition out of range"},
	}
	// Help that was asked for goes to standard output.
	if code, stdout, _ := run(t, "", "--help"); code != ExitOK || !strings.Contains(stdout, "Commands:") {
		t.Errorf("--help: exit %d, stdout:\n%s\nwant exit 0 and \"Commands:\"", code, stdout)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "", tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tt.code, tt.stderr)
			}
		})
	}
}

func TestServerFromEnv(t *testing.T) {
	f := clienttest.Start(t)
	f.AddTopic(t, "envtopic", 1)
	t.Setenv("STRATA_SERVER", f.Addr())
	code, out, stderr := run(t, "", "topic", "list")
	if code != ExitOK || !strings.Contains(out, "envtopic") {
		t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
	}
	// --server before the command wins over the environment.
	t.Setenv("STRATA_SERVER", "127.0.0.1:1")
	if code, out, _ := run(t, "", "--server", f.Addr(), "topic", "list"); code != ExitOK || !strings.Contains(out, "envtopic") {
		t.Fatalf("--server did not win over STRATA_SERVER: exit %d, out %q", code, out)
	}
}

func TestTopicCommands(t *testing.T) {
	f := clienttest.Start(t)
	srv := "--server=" + f.Addr()
	if code, out, stderr := run(t, "", srv, "topic", "create", "orders", "--partitions", "3", "--retention", "24h"); code != ExitOK || !strings.Contains(out, "3 partitions") {
		t.Fatalf("create: exit %d, %q %q", code, out, stderr)
	}
	if code, out, _ := run(t, "", srv, "topic", "list"); code != ExitOK || !strings.Contains(out, "orders") || !strings.Contains(out, "24h0m0s") {
		t.Fatalf("list: exit %d, %q", code, out)
	}
	if code, out, _ := run(t, "", srv, "topic", "describe", "orders"); code != ExitOK || strings.Count(out, "fake-broker") != 3 || !strings.Contains(out, "Cleanup policy:    delete") {
		t.Fatalf("describe: exit %d, %q", code, out)
	}
	if code, _, stderr := run(t, "", srv, "topic", "alter", "orders", "--cleanup-policy", "compact"); code != ExitOK {
		t.Fatalf("alter --cleanup-policy compact: exit %d, %q", code, stderr)
	}
	if code, out, _ := run(t, "", srv, "topic", "describe", "orders"); code != ExitOK || !strings.Contains(out, "Cleanup policy:    compact") {
		t.Fatalf("describe after --cleanup-policy compact: exit %d, %q", code, out)
	}
	if code, out, stderr := run(t, "", srv, "topic", "alter", "orders", "--retention", "1h", "--retention-bytes", "1000000"); code != ExitOK ||
		!strings.Contains(out, "retention 1h0m0s, retention bytes 1000000") {
		t.Fatalf("alter: exit %d, %q %q", code, out, stderr)
	}
	if code, _, _ := run(t, "", srv, "topic", "alter", "orders"); code != ExitUsage {
		t.Fatalf("alter with nothing to change: exit %d, want usage", code)
	}
	if code, out, stderr := run(t, "", srv, "topic", "alter", "orders", "--reset", "retention, retention-bytes"); code != ExitOK ||
		!strings.Contains(out, "retention default, retention bytes 0") {
		t.Fatalf("alter --reset: exit %d, %q %q", code, out, stderr)
	}
	if code, _, stderr := run(t, "", srv, "topic", "alter", "orders", "--reset", "retention,partitions"); code != ExitUsage || !strings.Contains(stderr, `--reset "partitions"`) {
		t.Fatalf("alter --reset partitions: exit %d, %q; want usage", code, stderr)
	}
	if code, out, stderr := run(t, "", srv, "topic", "alter", "orders", "--partitions", "5"); code != ExitOK || !strings.Contains(out, "5 partitions") {
		t.Fatalf("alter --partitions 5: exit %d, %q %q", code, out, stderr)
	}
	if code, out, _ := run(t, "", srv, "topic", "describe", "orders"); code != ExitOK || strings.Count(out, "fake-broker") != 5 {
		t.Fatalf("describe after --partitions 5: exit %d, %q", code, out)
	}
	if code, _, stderr := run(t, "", srv, "topic", "alter", "orders", "--partitions", "4"); code != ExitError || !strings.Contains(stderr, "only be added") {
		t.Fatalf("alter --partitions 4 of 5: exit %d, %q; want an error", code, stderr)
	}
	if code, _, _ := run(t, "", srv, "topic", "alter", "orders", "--partitions", "-1"); code != ExitUsage {
		t.Fatalf("alter --partitions -1: exit %d, want usage", code)
	}
	// delete-records against real servers: e2e's TestDeleteRecords.
	if code, _, stderr := run(t, "", srv, "topic", "delete-records", "orders"); code != ExitUsage || !strings.Contains(stderr, "--offset is required") {
		t.Fatalf("delete-records without --offset: exit %d, %q; want usage", code, stderr)
	}
	if code, _, _ := run(t, "", srv, "topic", "delete-records", "orders", "--offset", "5", "--partition", "-2"); code != ExitUsage {
		t.Fatalf("delete-records --partition -2: exit %d, want usage", code)
	}
	if code, out, _ := run(t, "", srv, "cluster", "status"); code != ExitOK || !strings.Contains(out, "fake-coordinator") || !strings.Contains(out, "orders/2@1") {
		t.Fatalf("cluster status: exit %d, %q", code, out)
	}
	if code, _, _ := run(t, "", srv, "topic", "delete", "orders"); code != ExitOK {
		t.Fatalf("delete: exit %d", code)
	}
	if code, _, _ := run(t, "", srv, "topic", "describe", "orders"); code != ExitError {
		t.Fatalf("describe after delete: exit %d", code)
	}
}

// TestProduceConsume produces 100,000 keyed lines and reads them back.
func TestProduceConsume(t *testing.T) {
	f := clienttest.Start(t)
	f.AddTopic(t, "t", 3)
	srv := "--server=" + f.Addr()
	const n = 100_000
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "k%d:v%d\n", i%100, i)
	}
	if code, _, stderr := run(t, in.String(), srv, "produce", "t", "--key-separator", ":", "-v"); code != ExitOK || !strings.Contains(stderr, "produced 100000 of 100000") {
		t.Fatalf("produce: exit %d, stderr %q", code, stderr)
	}
	if reqs := len(f.ProduceRequests()); reqs > n/10 {
		t.Fatalf("%d produce requests for %d records: not batched", reqs, n)
	}

	code, out, stderr := run(t, "", srv, "consume", "t", "--from-beginning", "-n", fmt.Sprint(n), "--format", "{{.Key}} {{.Value}} {{.Partition}}")
	if code != ExitOK {
		t.Fatalf("consume: exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("consumed %d lines, want %d", len(lines), n)
	}
	keyPart := map[string]string{}
	var values []string
	for _, l := range lines {
		fields := strings.Fields(l)
		if p, ok := keyPart[fields[0]]; ok && p != fields[2] {
			t.Fatalf("key %s in partitions %s and %s", fields[0], p, fields[2])
		}
		keyPart[fields[0]] = fields[2]
		values = append(values, fields[1])
	}
	sort.Strings(values)
	for i := 1; i < len(values); i++ {
		if values[i] == values[i-1] {
			t.Fatalf("value %s consumed twice", values[i])
		}
	}

	// One partition from an offset, default format.
	f.AddTopic(t, "one", 1)
	if code, _, _ := run(t, "a\nb\r\nc", srv, "produce", "one", "--partition", "0"); code != ExitOK {
		t.Fatalf("produce one: exit %d", code)
	}
	if code, out, _ := run(t, "", srv, "consume", "one", "--partition", "0", "--offset", "1", "-n", "2"); code != ExitOK || out != "b\nc\n" {
		t.Fatalf("consume --offset 1: exit %d, %q", code, out)
	}
	if code, out, _ := run(t, "", srv, "consume", "one", "--offset", "2", "--format", "kv", "--max-messages", "1"); code != ExitOK || out != "\tc\n" {
		t.Fatalf("consume --offset 2 all partitions: exit %d, %q", code, out)
	}
	// Without --from-beginning the consumer starts at the end: nothing
	// arrives, and --timeout ends it successfully.
	if code, out, stderr := run(t, "", srv, "consume", "one", "--timeout", "300ms"); code != ExitOK || out != "" {
		t.Fatalf("consume from the end: exit %d, %q %q", code, out, stderr)
	}
}

// TestServerDefaultPort: --server with a host only means port 7070, as
// the proxy's default; every address of a list gets it.
func TestServerDefaultPort(t *testing.T) {
	for in, want := range map[string]string{
		"broker-1":                 "broker-1:7070",
		"10.0.0.1":                 "10.0.0.1:7070",
		"::1":                      "[::1]:7070",
		"[::1]":                    "[::1]:7070",
		"h:9092":                   "h:9092",
		"a, b:1":                   "a:7070,b:1",
		"127.0.0.1:7070,127.0.0.2": "127.0.0.1:7070,127.0.0.2:7070",
	} {
		if got := withDefaultPort(in); got != want {
			t.Errorf("withDefaultPort(%q) = %q, want %q", in, got, want)
		}
	}
}
