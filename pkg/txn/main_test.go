package txn

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/meta"
)

// etcd is one real etcd server shared by the package's tests; each test
// works under a prefix of its own.
var etcd *testenv.Etcd

func TestMain(m *testing.M) { testenv.Main(m, &etcd) }

func testCtx(t testing.TB) context.Context { return testenv.Context(t) }

// newStore returns a Store on the shared etcd under prefix ("" for the
// test's own).
func newStore(t testing.TB, prefix string) *meta.Store {
	return testenv.NewMeta(t, etcd.Endpoints(), func(c *meta.Config) {
		if prefix != "" {
			c.Prefix = prefix
		}
	})
}

// clock is a fake clock the tests move by hand.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixMilli())
	return c
}

func (c *clock) Now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// markerCall is one WriteMarkers call.
type markerCall struct {
	pid    int64
	epoch  int16
	commit bool
	parts  []Partition
}

// fakeMarkers records WriteMarkers calls, and fails them while fail is
// set.
type fakeMarkers struct {
	mu    sync.Mutex
	calls []markerCall // guarded by mu
	fail  error        // guarded by mu
}

func (f *fakeMarkers) WriteMarkers(_ context.Context, pid int64, epoch int16, commit bool, parts []Partition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.calls = append(f.calls, markerCall{pid, epoch, commit, slices.Clone(parts)})
	return nil
}

func (f *fakeMarkers) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeMarkers) Calls() []markerCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// env is a coordinator under test with its store, markers and clock.
type env struct {
	c     *Coordinator
	store *meta.Store
	mk    *fakeMarkers
	clock *clock
}

// newEnv returns a Coordinator on store (a fresh one under the test's
// own prefix if nil), moved by clk (a fresh clock if nil).
func newEnv(t testing.TB, store *meta.Store, clk *clock, mutate ...func(*Config)) *env {
	t.Helper()
	if store == nil {
		store = newStore(t, "")
	}
	if clk == nil {
		clk = newClock()
	}
	e := &env{store: store, mk: &fakeMarkers{}, clock: clk}
	cfg := Config{
		Meta:          store,
		Markers:       e.mk,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		CheckInterval: 5 * time.Millisecond,
		Now:           clk.Now,
	}
	for _, f := range mutate {
		f(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	return e
}

// run starts e's Run until the test ends and waits until its copy of the
// states is loaded.
func (e *env) run(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, "the transaction copy to load", func() bool {
		e.c.mu.RLock()
		defer e.c.mu.RUnlock()
		return e.c.loaded
	})
}

// state reads id's state from etcd.
func (e *env) state(t testing.TB, id string) meta.TxnState {
	t.Helper()
	st, err := e.store.GetTxn(testCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// init calls InitProducer as alice with a minute's timeout.
func (e *env) init(t testing.TB, id string, pid int64, epoch int16) (int64, int16) {
	t.Helper()
	return e.initAs(t, "alice", id, pid, epoch)
}

// initAs is init by principal.
func (e *env) initAs(t testing.TB, principal, id string, pid int64, epoch int16) (int64, int16) {
	t.Helper()
	gotPID, gotEpoch, err := e.c.InitProducer(testCtx(t), id, principal, time.Minute, pid, epoch)
	if err != nil {
		t.Fatalf("InitProducer(%q, %d, %d): %v", id, pid, epoch, err)
	}
	return gotPID, gotEpoch
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, what, 30*time.Second, cond)
}

// wantErr fails the test unless err matches want (nil: no error).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

// parts returns partitions 0..n-1 of topic "orders".
func parts(n int) []Partition {
	out := make([]Partition, n)
	for i := range out {
		out[i] = Partition{Topic: "orders", TopicID: "t-orders", Partition: int32(i)}
	}
	return out
}
