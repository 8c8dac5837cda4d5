package testenv

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Servers shared by the tests of one test binary: Main starts etcd, and
// SharedMinIO starts MinIO the first time a test asks for it.
var (
	sharedDir   string
	minioOnce   sync.Once
	sharedMinIO *MinIO
	minioErr    error
	prefixSeq   atomic.Int64
)

// Main runs a package's tests with one real etcd server shared by all of
// them, stored in *etcd for the tests to use; it stops every shared server
// afterwards and exits with the tests' code. Call it from TestMain. Tests
// keep apart by working under their own Prefix.
func Main(m *testing.M, etcd **Etcd) {
	os.Exit(runMain(m, etcd))
}

func runMain(m *testing.M, etcd **Etcd) int {
	var err error
	if sharedDir, err = os.MkdirTemp("", "strata-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(sharedDir)
	if etcd != nil {
		if *etcd, err = NewEtcd(filepath.Join(sharedDir, "etcd")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	if etcd != nil {
		(*etcd).Kill()
	}
	if sharedMinIO != nil {
		sharedMinIO.Kill()
	}
	if code == 0 {
		code = checkLeaks()
	}
	return code
}

// checkLeaks fails the test binary when goroutines the tests started are
// still running once every test ended: each goroutine must have an owner
// that waits for it. It ignores goroutines of the runtime and of libraries
// that keep process-wide workers by design.
func checkLeaks() int {
	// Idle keep-alive connections of the default HTTP client (readiness
	// probes, metrics scrapes) are a pool, not a leak.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if err := goleak.Find(leakOptions()...); err != nil {
		fmt.Fprintf(os.Stderr, "goroutines still running after the tests ended: %v\n", err)
		return 1
	}
	return 0
}

// leakOptions are the goroutines checkLeaks tolerates.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		// Process-wide workers started by package init or first use.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		// Sarama's metrics start one ticker for all meters, never stopped.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	}
}

// SharedMinIO returns the test binary's MinIO server, starting it on first
// use; Main stops it. It fails the test, never skips it, when MinIO cannot
// start. Tests keep apart by using buckets of their own.
func SharedMinIO(t testing.TB) *MinIO {
	t.Helper()
	minioOnce.Do(func() {
		dir := sharedDir
		if dir == "" {
			minioErr = fmt.Errorf("testenv: SharedMinIO needs TestMain to call testenv.Main")
			return
		}
		sharedMinIO, minioErr = NewMinIO(filepath.Join(dir, "minio"))
	})
	if minioErr != nil {
		t.Fatalf("starting MinIO: %v", minioErr)
	}
	return sharedMinIO
}

// Prefix returns an etcd key prefix that no other test of this process
// uses, such as "/t-TestName-1700000000-3".
func Prefix(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("/t-%s-%d-%d", name, time.Now().UnixNano(), prefixSeq.Add(1))
}
