package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/internal/testenv"
)

// TestQuickstart follows the README's quickstart with the real binaries:
// `strata dev` in one process, then the CLI creates a topic, produces
// 100,000 lines to one partition from stdin and consumes them back, in
// order, with nothing lost or duplicated; a Kafka client reads them too,
// and a Sarama producer's record to a topic nobody created lands in a
// topic created for it. It then stops `strata dev` with
// SIGTERM, starts it again on the same data directory and reads the lines
// once more.
func TestQuickstart(t *testing.T) {
	bin, err := testenv.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	strata := filepath.Join(bin, "strata")
	dir := t.TempDir()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	kafkaAddr, err := testenv.FreeAddr() // not 9092: other tests may run beside this one
	if err != nil {
		t.Fatal(err)
	}
	dev, err := testenv.StartProcess(testenv.ProcessSpec{
		Name: "strata-dev", Path: strata, LogDir: dir, Dir: dir,
		Args:  []string{"dev", "--addr", addr, "--kafka-addr", kafkaAddr},
		Ready: testenv.GRPCServing(addr),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Kill)

	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(strata, append([]string{"--server", addr}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	const n = 100_000
	var lines bytes.Buffer
	for i := range n {
		fmt.Fprintf(&lines, "line %d\n", i)
	}
	run(nil, "topic", "create", "quickstart", "--partitions", "1")
	run(lines.Bytes(), "produce", "quickstart")
	check := func() {
		t.Helper()
		out := run(nil, "consume", "quickstart", "--from-beginning", "-n", fmt.Sprint(n))
		if !bytes.Equal(out, lines.Bytes()) {
			got := strings.Count(string(out), "\n")
			t.Fatalf("consumed %d lines that differ from the %d produced", got, n)
		}
	}
	check()

	// strata dev prints its Kafka address and serves the same records there.
	if log, err := os.ReadFile(dev.LogPath()); err != nil || !strings.Contains(string(log), "Kafka clients connect to "+kafkaAddr) {
		t.Fatalf("strata dev did not print its Kafka address %s: %v\n%s", kafkaAddr, err, log)
	}
	kchk := checker.New()
	if read := kgoConsumeAll(t, t.Context(), kafkaAddr, kchk, "quickstart"); read != n {
		t.Fatalf("a Kafka client read %d lines through strata dev, want %d", read, n)
	}

	// As a Kafka installed from its release does, strata dev creates a
	// topic a producer names before anyone created it (Sarama asks
	// Metadata to, by default).
	sp, err := sarama.NewSyncProducer([]string{kafkaAddr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	_, off, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "made-on-first-produce", Value: sarama.StringEncoder("hello")})
	if cerr := sp.Close(); err == nil {
		err = cerr
	}
	if err != nil || off != 0 {
		t.Fatalf("Sarama produce to a topic nobody created: offset %d, %v; want offset 0", off, err)
	}
	if out := run(nil, "consume", "made-on-first-produce", "--from-beginning", "-n", "1"); string(out) != "hello\n" {
		t.Fatalf("the auto-created topic holds %q, want the record produced", out)
	}

	// Creating it again is an error with a clear message and exit code.
	cmd := exec.Command(strata, "--server", addr, "topic", "create", "quickstart")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "exists") {
		t.Fatalf("second create: %v, %q; want exit 1 mentioning that it exists", err, out)
	}

	dev.Stop()
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	check()
}
