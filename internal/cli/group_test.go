package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/dev"
)

// TestConsumeGroupResumes runs the group commands against a real
// in-process cluster (embedded etcd, coordinator, broker, proxy): each
// `consume --group -n N` commits exactly the N records it printed, so the
// next run starts right after them and no record is printed twice.
func TestConsumeGroupResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := dev.New(dev.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	srv := "--server=" + cl.Addr()
	must := func(stdin string, args ...string) string {
		t.Helper()
		code, out, stderr := run(t, stdin, append([]string{srv}, args...)...)
		if code != ExitOK {
			t.Fatalf("strata %v: exit %d, stderr %s", args, code, stderr)
		}
		return out
	}
	must("", "topic", "create", "ev", "--partitions", "3")
	// Produce once every partition has an owner.
	for deadline := time.Now().Add(30 * time.Second); strings.Contains(must("", "topic", "describe", "ev"), "(unassigned)"); {
		if time.Now().After(deadline) {
			t.Fatal("partitions never assigned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var in strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "v%03d\n", i)
	}
	must(in.String(), "produce", "ev")

	seen := map[string]int{}
	consume := func(args ...string) []string {
		t.Helper()
		out := must("", append([]string{"consume", "ev", "--group", "g", "--from-beginning", "--format", "{{.Partition}}:{{.Offset}}:{{.Value}}"}, args...)...)
		lines := strings.Fields(out)
		for _, l := range lines {
			seen[l]++
		}
		return lines
	}
	if got := consume("-n", "30"); len(got) != 30 {
		t.Fatalf("first run printed %d records, want 30", len(got))
	}
	if got := consume("-n", "30"); len(got) != 30 {
		t.Fatalf("second run printed %d records, want 30", len(got))
	}
	if got := consume("--timeout", "2s"); len(got) != 40 {
		t.Fatalf("third run printed %d records, want the remaining 40", len(got))
	}
	for l, n := range seen {
		if n != 1 {
			t.Errorf("%s printed %d times", l, n)
		}
	}
	if len(seen) != 100 {
		t.Fatalf("%d distinct records printed, want 100", len(seen))
	}

	if out := must("", "group", "list"); !strings.Contains(out, "g ") || !strings.Contains(out, "Empty") {
		t.Errorf("group list:\n%s", out)
	}
	desc := must("", "group", "describe", "g")
	for _, line := range strings.Split(desc, "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == "ev" && f[5] != "0" {
			t.Errorf("lag not zero after the final commit: %s", line)
		}
	}
	if strings.Count(desc, "\nev ") != 3 {
		t.Errorf("describe lists not 3 partitions:\n%s", desc)
	}

	// A live member blocks a reset; once it left, the reset works.
	c, err := client.New(cl.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	assigned := make(chan struct{}, 1)
	gc, err := c.NewGroupConsumer("g", client.Subscribe("ev"), client.OnAssigned(func(context.Context, []client.TopicPartition) {
		select {
		case assigned <- struct{}{}:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatal("the member got no partitions")
	}
	if code, _, stderr := run(t, "", srv, "group", "reset-offsets", "g", "--topic", "ev", "--to-earliest"); code != ExitError || !strings.Contains(stderr, "live members") {
		t.Fatalf("reset with a live member: exit %d, %s", code, stderr)
	}
	if err := gc.Close(); err != nil {
		t.Fatal(err)
	}
	must("", "group", "reset-offsets", "g", "--topic", "ev", "--to-offset", "10", "--execute")
	if got := consume("--timeout", "2s"); len(got) != 100-3*10 {
		// 3 partitions reset to offset 10 each: all but 30 records again.
		t.Fatalf("after reset printed %d records, want 70", len(got))
	}

	// delete-offsets drops the partitions named; delete drops the group.
	must("", "group", "delete-offsets", "g", "--topic", "ev:0")
	committed, err := c.CommittedOffsets(ctx, "g")
	if err != nil || len(committed) != 2 {
		t.Fatalf("committed after delete-offsets ev:0: %v, %v; want partitions 1 and 2", committed, err)
	}
	if _, ok := committed[client.TopicPartition{Topic: "ev", Partition: 0}]; ok {
		t.Fatalf("partition 0 still committed: %v", committed)
	}
	if out := must("", "group", "delete", "g"); !strings.Contains(out, `Deleted group "g"`) {
		t.Fatalf("group delete printed %q", out)
	}
	if code, _, stderr := run(t, "", srv, "group", "delete", "g"); code != ExitError || !strings.Contains(stderr, "no state and no offsets") {
		t.Fatalf("deleting the group again: exit %d, %s", code, stderr)
	}
}

func TestGroupArgs(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"group with partition", []string{"consume", "t", "--group", "g", "--partition", "1"}, "--group excludes"},
		{"bad session timeout", []string{"consume", "t", "--group", "g", "--session-timeout", "10ms"}, "--session-timeout"},
		{"describe without group", []string{"group", "describe"}, "missing group name"},
		{"reset without topic", []string{"group", "reset-offsets", "g", "--to-earliest"}, "--topic is required"},
		{"delete-offsets without topic", []string{"group", "delete-offsets", "g"}, "--topic is required"},
		{"delete without group", []string{"group", "delete"}, "group"},
		{"reset two targets", []string{"group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"}, "exactly one"},
		{"reset bad time", []string{"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"}, "--to-datetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "", append([]string{"--server=127.0.0.1:1"}, tt.args...)...)
			if code != ExitUsage || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant usage error %q", code, stderr, tt.stderr)
			}
		})
	}
}
