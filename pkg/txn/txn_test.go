package txn

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

func TestConfigValidate(t *testing.T) {
	store := newStore(t, "")
	ok := Config{Meta: store, Markers: &fakeMarkers{}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a minimal config: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no Meta":            func(c *Config) { c.Meta = nil },
		"no Markers":         func(c *Config) { c.Markers = nil },
		"negative interval":  func(c *Config) { c.CheckInterval = -time.Second },
		"negative partitons": func(c *Config) { c.MaxPartitions = -1 },
		"huge max timeout":   func(c *Config) { c.MaxTimeout = 30 * 24 * time.Hour },
	} {
		cfg := ok
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}

func TestInitProducer(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := testCtx(t)
	pid, epoch := e.init(t, "app-1", -1, -1)
	if pid < 0 || epoch != 0 {
		t.Fatalf("a new id got producer %d epoch %d, want a pid ≥ 0 at epoch 0", pid, epoch)
	}
	st := e.state(t, "app-1")
	if st.ProducerID != pid || st.Status != meta.TxnEmpty || st.Principal != "alice" || st.TimeoutMs != 60000 {
		t.Fatalf("stored state %+v", st)
	}
	if id, err := e.store.TxnIDOf(ctx, pid); err != nil || id != "app-1" {
		t.Fatalf("TxnIDOf(%d) = %q, %v", pid, id, err)
	}
	// A new instance of the producer bumps the epoch; KIP-360 recovery
	// with the current pid and epoch does too.
	if p, ep := e.init(t, "app-1", -1, -1); p != pid || ep != 1 {
		t.Fatalf("second InitProducer: %d/%d, want %d/1", p, ep, pid)
	}
	if p, ep := e.init(t, "app-1", pid, 1); p != pid || ep != 2 {
		t.Fatalf("InitProducer with the current epoch: %d/%d, want %d/2", p, ep, pid)
	}
	// Its answer lost, the producer asks again with the epoch it had.
	if p, ep := e.init(t, "app-1", pid, 1); p != pid || ep != 3 {
		t.Fatalf("InitProducer repeated: %d/%d, want %d/3", p, ep, pid)
	}
	for _, tc := range []struct {
		what       string
		principal  string
		timeout    time.Duration
		pid        int64
		epoch      int16
		id, errMsg string
		want       error
	}{
		{"an older epoch", "alice", time.Minute, pid, 1, "app-1", "", apierr.ErrProducerFenced},
		{"another pid", "alice", time.Minute, pid + 1, 3, "app-1", "", apierr.ErrUnknownProducerID},
		{"another principal naming the producer", "bob", time.Minute, pid, 3, "app-1", "", apierr.ErrPermissionDenied},
		{"timeout 0", "alice", 0, -1, -1, "app-1", "", apierr.ErrInvalidTxnTimeout},
		{"timeout past the maximum", "alice", DefaultMaxTimeout + time.Millisecond, -1, -1, "app-1", "", apierr.ErrInvalidTxnTimeout},
		{"a pid without an epoch", "alice", time.Minute, pid, -1, "app-1", "", apierr.ErrInvalidRequest},
		{"an empty id", "alice", time.Minute, -1, -1, "", "", apierr.ErrInvalidRequest},
	} {
		if _, _, err := e.c.InitProducer(ctx, tc.id, tc.principal, tc.timeout, tc.pid, tc.epoch); !errors.Is(err, tc.want) {
			t.Errorf("InitProducer with %s: %v, want %v", tc.what, err, tc.want)
		}
	}
	if st := e.state(t, "app-1"); st.Epoch != 3 {
		t.Fatalf("refused calls changed the epoch to %d", st.Epoch)
	}
	// A new instance under another principal (rotated credentials) takes
	// the id over, as in Kafka, and fences the old one.
	if p, ep := e.initAs(t, "bob", "app-1", -1, -1); p != pid || ep != 4 {
		t.Fatalf("InitProducer by another principal: %d/%d, want %d/4", p, ep, pid)
	}
	if st := e.state(t, "app-1"); st.Principal != "bob" {
		t.Fatalf("the id's principal is %q after the takeover, want bob", st.Principal)
	}
	wantErr(t, "AddPartitions by the fenced producer", e.c.AddPartitions(ctx, "app-1", "alice", pid, 3, parts(1)), apierr.ErrProducerFenced)
	wantErr(t, "AddPartitions by the new one", e.c.AddPartitions(ctx, "app-1", "bob", pid, 4, parts(1)), nil)
}

func TestInitProducerRotatesExhaustedEpoch(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := testCtx(t)
	pid, _ := e.init(t, "app", -1, -1)
	st := e.state(t, "app")
	st.Epoch = maxEpoch
	if _, err := e.store.PutTxn(ctx, st); err != nil {
		t.Fatal(err)
	}
	newPID, epoch := e.init(t, "app", pid, maxEpoch)
	if newPID == pid || epoch != 0 {
		t.Fatalf("InitProducer at epoch %d: %d/%d, want a new pid at epoch 0", maxEpoch, newPID, epoch)
	}
	if _, err := e.store.TxnIDOf(ctx, pid); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("the old pid still maps: %v", err)
	}
	if id, err := e.store.TxnIDOf(ctx, newPID); err != nil || id != "app" {
		t.Fatalf("TxnIDOf(new pid) = %q, %v", id, err)
	}
	wantErr(t, "AddPartitions with the old pid", e.c.AddPartitions(ctx, "app", "alice", pid, maxEpoch, parts(1)), apierr.ErrUnknownProducerID)
	wantErr(t, "AddPartitions with the new pid", e.c.AddPartitions(ctx, "app", "alice", newPID, 0, parts(1)), nil)
}

func TestCommit(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := testCtx(t)
	pid, epoch := e.init(t, "app", -1, -1)
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(2)), nil)
	wantErr(t, "AddPartitions again", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(3)), nil)
	wantErr(t, "AddGroup", e.c.AddGroup(ctx, "app", "alice", pid, epoch, "billing"), nil)
	wantErr(t, "AddGroup again", e.c.AddGroup(ctx, "app", "alice", pid, epoch, "billing"), nil)
	stage := func(off int64) {
		t.Helper()
		err := e.c.StageOffsets(ctx, "app", "alice", pid, epoch, "billing", []meta.TxnOffset{
			{TopicID: "t-in", Partition: 0, Offset: off, Metadata: "m"},
			{TopicID: "t-in", Partition: 1, Offset: off + 100},
		})
		wantErr(t, "StageOffsets", err, nil)
	}
	stage(5)
	stage(7) // replaces the first
	st := e.state(t, "app")
	if st.Status != meta.TxnOngoing || len(st.Partitions) != 3 || len(st.Groups) != 1 || len(st.Offsets) != 2 || st.StartedMs != e.clock.Now().UnixMilli() {
		t.Fatalf("ongoing state %+v", st)
	}

	wantErr(t, "End(commit)", e.c.End(ctx, "app", "alice", pid, epoch, true), nil)
	calls := e.mk.Calls()
	if len(calls) != 1 || calls[0].pid != pid || calls[0].epoch != epoch || !calls[0].commit || len(calls[0].parts) != 3 {
		t.Fatalf("markers %+v, want one commit at %d/%d to 3 partitions", calls, pid, epoch)
	}
	offs, err := e.store.FetchOffsets(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 2 || offs[0].Offset != 7 || offs[0].Metadata != "m" || offs[1].Offset != 107 {
		t.Fatalf("committed offsets %+v", offs)
	}
	st = e.state(t, "app")
	if st.Status != meta.TxnCompleteCommit || st.Partitions != nil || st.Groups != nil || st.Offsets != nil || st.Epoch != epoch {
		t.Fatalf("completed state %+v", st)
	}
	// A retried EndTxn with the same outcome succeeds and writes nothing.
	wantErr(t, "End(commit) again", e.c.End(ctx, "app", "alice", pid, epoch, true), nil)
	wantErr(t, "End(abort) after the commit", e.c.End(ctx, "app", "alice", pid, epoch, false), apierr.ErrInvalidTxnState)
	if n := len(e.mk.Calls()); n != 1 {
		t.Fatalf("%d marker calls after the retries, want 1", n)
	}
	if v := testenv.MetricValue(t, e.c.metrics.ended.WithLabelValues("commit")); v != 1 {
		t.Fatalf("ended_total{commit} = %v", v)
	}
}

func TestAbortClearsTheLastTransaction(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := testCtx(t)
	pid, epoch := e.init(t, "app", -1, -1)
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(3)), nil)
	wantErr(t, "End(commit)", e.c.End(ctx, "app", "alice", pid, epoch, true), nil)

	// The next transaction starts empty, whatever the last one held.
	e.clock.Add(time.Second)
	wantErr(t, "AddGroup", e.c.AddGroup(ctx, "app", "alice", pid, epoch, "billing"), nil)
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(1)), nil)
	wantErr(t, "StageOffsets", e.c.StageOffsets(ctx, "app", "alice", pid, epoch, "billing", []meta.TxnOffset{{TopicID: "t-in", Offset: 9}}), nil)
	st := e.state(t, "app")
	if len(st.Partitions) != 1 || st.StartedMs != e.clock.Now().UnixMilli() {
		t.Fatalf("second transaction %+v", st)
	}
	wantErr(t, "End(abort)", e.c.End(ctx, "app", "alice", pid, epoch, false), nil)
	calls := e.mk.Calls()
	if last := calls[len(calls)-1]; len(calls) != 2 || last.commit || len(last.parts) != 1 {
		t.Fatalf("markers %+v, want an abort to one partition last", calls)
	}
	if offs, _ := e.store.FetchOffsets(ctx, "billing"); len(offs) != 0 {
		t.Fatalf("an aborted transaction committed offsets %+v", offs)
	}
	if st := e.state(t, "app"); st.Status != meta.TxnCompleteAbort {
		t.Fatalf("state %s, want complete_abort", st.Status)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, nil, nil, func(c *Config) { c.MaxPartitions = 4 })
	ctx := testCtx(t)
	pid, epoch := e.init(t, "app", -1, -1)
	wantErr(t, "End on an empty id", e.c.End(ctx, "app", "alice", pid, epoch, true), apierr.ErrInvalidTxnState)
	wantErr(t, "StageOffsets before AddGroup", e.c.StageOffsets(ctx, "app", "alice", pid, epoch, "g", nil), apierr.ErrInvalidTxnState)
	wantErr(t, "AddPartitions of an unknown id", e.c.AddPartitions(ctx, "nope", "alice", pid, epoch, parts(1)), apierr.ErrUnknownProducerID)
	wantErr(t, "AddPartitions with another pid", e.c.AddPartitions(ctx, "app", "alice", pid+1, epoch, parts(1)), apierr.ErrUnknownProducerID)
	wantErr(t, "AddPartitions by another principal", e.c.AddPartitions(ctx, "app", "bob", pid, epoch, parts(1)), apierr.ErrPermissionDenied)
	wantErr(t, "AddPartitions at a future epoch", e.c.AddPartitions(ctx, "app", "alice", pid, epoch+1, parts(1)), apierr.ErrProducerFenced)
	wantErr(t, "AddPartitions past MaxPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(5)), apierr.ErrInvalidRequest)
	wantErr(t, "AddPartitions without a topic ID", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, []Partition{{Topic: "x"}}), apierr.ErrInvalidRequest)
	wantErr(t, "AddGroup with a bad name", e.c.AddGroup(ctx, "app", "alice", pid, epoch, "a/b"), apierr.ErrInvalidGroupID)
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(4)), nil)
	wantErr(t, "AddGroup", e.c.AddGroup(ctx, "app", "alice", pid, epoch, "g"), nil)
	wantErr(t, "StageOffsets of another group", e.c.StageOffsets(ctx, "app", "alice", pid, epoch, "h", nil), apierr.ErrInvalidTxnState)
	wantErr(t, "StageOffsets of a negative offset", e.c.StageOffsets(ctx, "app", "alice", pid, epoch, "g", []meta.TxnOffset{{TopicID: "t", Offset: -1}}), apierr.ErrInvalidRequest)
	five := make([]meta.TxnOffset, 5)
	for i := range five {
		five[i] = meta.TxnOffset{TopicID: "t", Partition: int32(i)}
	}
	wantErr(t, "StageOffsets past MaxPartitions", e.c.StageOffsets(ctx, "app", "alice", pid, epoch, "g", five), apierr.ErrInvalidRequest)

	// A new instance fences this one.
	_, newEpoch := e.init(t, "app", -1, -1)
	for name, err := range map[string]error{
		"AddPartitions": e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(1)),
		"AddGroup":      e.c.AddGroup(ctx, "app", "alice", pid, epoch, "g"),
		"StageOffsets":  e.c.StageOffsets(ctx, "app", "alice", pid, epoch, "g", nil),
		"End":           e.c.End(ctx, "app", "alice", pid, epoch, true),
	} {
		wantErr(t, name+" at the fenced epoch", err, apierr.ErrProducerFenced)
	}
	wantErr(t, "End at the new epoch of an empty id", e.c.End(ctx, "app", "alice", pid, newEpoch, false), apierr.ErrInvalidTxnState)
}

func TestMarkerFailureKeepsTheDecision(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := testCtx(t)
	pid, epoch := e.init(t, "app", -1, -1)
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(2)), nil)
	e.mk.setFail(errors.New("broker unreachable"))
	err := e.c.End(ctx, "app", "alice", pid, epoch, true)
	if !errors.Is(err, apierr.ErrStorageUnavailable) || !apierr.Retriable(err) {
		t.Fatalf("End with failing markers: %v, want a retriable STORAGE_UNAVAILABLE", err)
	}
	if st := e.state(t, "app"); st.Status != meta.TxnPrepareCommit {
		t.Fatalf("state %s, want prepare_commit", st.Status)
	}
	wantErr(t, "AddPartitions while completing", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(3)), apierr.ErrConcurrentTxns)
	wantErr(t, "End(abort) of a decided commit", e.c.End(ctx, "app", "alice", pid, epoch, false), apierr.ErrInvalidTxnState)
	e.mk.setFail(apierr.ErrNotOwner)
	wantErr(t, "End with markers failing NOT_OWNER", e.c.End(ctx, "app", "alice", pid, epoch, true), apierr.ErrNotOwner)
	if v := testenv.MetricValue(t, e.c.metrics.markerFailures); v != 2 {
		t.Fatalf("marker_failures_total = %v, want 2", v)
	}
	e.mk.setFail(nil)
	wantErr(t, "End retried", e.c.End(ctx, "app", "alice", pid, epoch, true), nil)
	if st := e.state(t, "app"); st.Status != meta.TxnCompleteCommit {
		t.Fatalf("state %s, want complete_commit", st.Status)
	}
}

func TestInitProducerFencesOngoing(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := testCtx(t)
	pid, epoch := e.init(t, "app", -1, -1)
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(2)), nil)

	// A second instance takes the id over: the first one's transaction is
	// aborted at the next epoch, and the new instance gets the one after.
	p2, e2 := e.init(t, "app", -1, -1)
	if p2 != pid || e2 != epoch+2 {
		t.Fatalf("second instance got %d/%d, want %d/%d", p2, e2, pid, epoch+2)
	}
	calls := e.mk.Calls()
	if len(calls) != 1 || calls[0].commit || calls[0].epoch != epoch+1 || len(calls[0].parts) != 2 {
		t.Fatalf("markers %+v, want one abort at epoch %d to 2 partitions", calls, epoch+1)
	}
	wantErr(t, "AddPartitions by the old instance", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(1)), apierr.ErrProducerFenced)
	wantErr(t, "Verify of the old instance", e.c.Verify(ctx, pid, epoch, "t-orders", 0), apierr.ErrProducerFenced)
	_, _, err := e.c.InitProducer(ctx, "app", "alice", time.Minute, pid, epoch)
	wantErr(t, "InitProducer recovery by the old instance", err, apierr.ErrProducerFenced)

	// The producer's own KIP-360 bump aborts its transaction too, and it
	// carries on.
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, e2, parts(1)), nil)
	if p, ep := e.init(t, "app", pid, e2); p != pid || ep != e2+2 {
		t.Fatalf("own bump: %d/%d, want %d/%d", p, ep, pid, e2+2)
	}
	if calls := e.mk.Calls(); len(calls) != 2 || calls[1].commit || calls[1].epoch != e2+1 {
		t.Fatalf("markers %+v, want a second abort at epoch %d", calls, e2+1)
	}
}

func TestInitProducerFinishesDecided(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := testCtx(t)
	pid, epoch := e.init(t, "app", -1, -1)
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(1)), nil)
	e.mk.setFail(errors.New("down"))
	if err := e.c.End(ctx, "app", "alice", pid, epoch, true); err == nil {
		t.Fatal("End with failing markers succeeded")
	}
	_, _, err := e.c.InitProducer(ctx, "app", "alice", time.Minute, -1, -1)
	wantErr(t, "InitProducer while markers fail", err, apierr.ErrStorageUnavailable)
	e.mk.setFail(nil)
	if _, ep := e.init(t, "app", -1, -1); ep != epoch+1 {
		t.Fatalf("epoch %d, want %d", ep, epoch+1)
	}
	// The decided commit is carried out at its own epoch, not aborted.
	calls := e.mk.Calls()
	if len(calls) != 1 || !calls[0].commit || calls[0].epoch != epoch {
		t.Fatalf("markers %+v, want one commit at epoch %d", calls, epoch)
	}
}

func TestVerify(t *testing.T) {
	store := newStore(t, "")
	a := newEnv(t, store, nil)
	b := newEnv(t, newStore(t, store.Prefix()), a.clock) // another proxy
	ctx := testCtx(t)
	wantErr(t, "Verify of an unknown pid", a.c.Verify(ctx, 12345, 0, "t-orders", 0), apierr.ErrUnknownProducerID)
	pid, epoch := b.init(t, "app", -1, -1)
	wantErr(t, "Verify with nothing ongoing", a.c.Verify(ctx, pid, epoch, "t-orders", 0), apierr.ErrInvalidTxnState)
	// a remembers the empty state now; b adds the partition.
	wantErr(t, "AddPartitions", b.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(1)), nil)
	wantErr(t, "Verify of an added partition", a.c.Verify(ctx, pid, epoch, "t-orders", 0), nil)
	wantErr(t, "Verify of another partition", a.c.Verify(ctx, pid, epoch, "t-orders", 1), apierr.ErrInvalidTxnState)
	wantErr(t, "Verify at an older epoch", a.c.Verify(ctx, pid, epoch-1, "t-orders", 0), apierr.ErrProducerFenced)
	wantErr(t, "Verify at a newer epoch", a.c.Verify(ctx, pid, epoch+1, "t-orders", 0), apierr.ErrProducerFenced)
	wantErr(t, "End", b.c.End(ctx, "app", "alice", pid, epoch, true), nil)

	// With Run, a's copy follows b's writes through the watch.
	a.run(t)
	wantErr(t, "AddPartitions", b.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(2)), nil)
	rev := b.state(t, "app").Revision
	waitFor(t, "a's copy to show the new transaction", func() bool {
		a.c.mu.RLock()
		defer a.c.mu.RUnlock()
		e := a.c.byID[a.c.byPID[pid]]
		return e != nil && e.st.Revision == rev
	})
	wantErr(t, "Verify from the copy", a.c.Verify(ctx, pid, epoch, "t-orders", 1), nil)
}

func TestRunAbortsTimedOut(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := testCtx(t)
	pid, epoch, err := e.c.InitProducer(ctx, "app", "alice", time.Second, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(2)), nil)
	e.run(t)
	e.clock.Add(1001 * time.Millisecond)
	waitFor(t, "the timed-out transaction to be aborted", func() bool {
		return e.state(t, "app").Status == meta.TxnCompleteAbort
	})
	st := e.state(t, "app")
	calls := e.mk.Calls()
	if st.Epoch != epoch+1 || !st.Recoverable || len(calls) != 1 || calls[0].commit || calls[0].epoch != epoch+1 {
		t.Fatalf("state %+v, markers %+v: want an abort at epoch %d", st, calls, epoch+1)
	}
	if v := testenv.MetricValue(t, e.c.metrics.timedOut); v != 1 {
		t.Fatalf("timeouts_total = %v", v)
	}
	// The producer is fenced until it recovers with its old epoch (KIP-588).
	wantErr(t, "AddPartitions after the timeout", e.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(1)), apierr.ErrProducerFenced)
	wantErr(t, "End after the timeout", e.c.End(ctx, "app", "alice", pid, epoch, true), apierr.ErrProducerFenced)
	wantErr(t, "Verify after the timeout", e.c.Verify(ctx, pid, epoch, "t-orders", 0), apierr.ErrProducerFenced)
	p, ep := e.init(t, "app", pid, epoch)
	if p != pid || ep != epoch+2 {
		t.Fatalf("recovery: %d/%d, want %d/%d", p, ep, pid, epoch+2)
	}
	wantErr(t, "AddPartitions after recovery", e.c.AddPartitions(ctx, "app", "alice", pid, ep, parts(1)), nil)
}

func TestRunFinishesAfterCrash(t *testing.T) {
	store := newStore(t, "")
	dead := newEnv(t, store, nil)
	ctx := testCtx(t)
	pid, epoch := dead.init(t, "app", -1, -1)
	wantErr(t, "AddPartitions", dead.c.AddPartitions(ctx, "app", "alice", pid, epoch, parts(3)), nil)
	wantErr(t, "AddGroup", dead.c.AddGroup(ctx, "app", "alice", pid, epoch, "billing"), nil)
	wantErr(t, "StageOffsets", dead.c.StageOffsets(ctx, "app", "alice", pid, epoch, "billing", []meta.TxnOffset{{TopicID: "t-in", Offset: 42}}), nil)
	// The proxy decides, then dies before any marker is written.
	dead.mk.setFail(errors.New("proxy killed"))
	if err := dead.c.End(ctx, "app", "alice", pid, epoch, true); err == nil {
		t.Fatal("End succeeded")
	}

	other := newEnv(t, newStore(t, store.Prefix()), dead.clock)
	other.run(t)
	dead.clock.Add(DefaultRecoverAfter)
	waitFor(t, "another proxy to finish the commit", func() bool {
		return other.state(t, "app").Status == meta.TxnCompleteCommit
	})
	calls := other.mk.Calls()
	if len(calls) != 1 || !calls[0].commit || calls[0].epoch != epoch || calls[0].pid != pid || len(calls[0].parts) != 3 {
		t.Fatalf("markers %+v, want one commit at %d/%d to 3 partitions", calls, pid, epoch)
	}
	if offs, _ := store.FetchOffsets(ctx, "billing"); len(offs) != 1 || offs[0].Offset != 42 {
		t.Fatalf("committed offsets %+v", offs)
	}
	if v := testenv.MetricValue(t, other.c.metrics.recovered); v != 1 {
		t.Fatalf("recovered_total = %v", v)
	}
	// The producer's retried EndTxn now just succeeds.
	wantErr(t, "End retried", dead.c.End(ctx, "app", "alice", pid, epoch, true), nil)
}

func TestTwoCoordinatorsRace(t *testing.T) {
	store := newStore(t, "")
	clk := newClock()
	cs := []*env{newEnv(t, store, clk), newEnv(t, newStore(t, store.Prefix()), clk)}
	ctx := testCtx(t)

	// Two instances initialise at once: each gets its own epoch.
	type res struct {
		pid   int64
		epoch int16
		err   error
	}
	ch := make(chan res, 2)
	for _, e := range cs {
		go func() {
			p, ep, err := e.c.InitProducer(ctx, "app", "alice", time.Second, -1, -1)
			ch <- res{p, ep, err}
		}()
	}
	r1, r2 := <-ch, <-ch
	if r1.err != nil || r2.err != nil || r1.pid != r2.pid || r1.epoch == r2.epoch {
		t.Fatalf("concurrent InitProducer: %+v and %+v, want one pid at two epochs", r1, r2)
	}
	pid, epoch := r1.pid, max(r1.epoch, r2.epoch)
	wantErr(t, "AddPartitions at the lower epoch", cs[0].c.AddPartitions(ctx, "app", "alice", pid, min(r1.epoch, r2.epoch), parts(1)), apierr.ErrProducerFenced)

	// Partitions added through both at once all land.
	const n = 12
	errs := make(chan error, n)
	for i := range n {
		go func() {
			p := Partition{Topic: "orders", TopicID: "t-orders", Partition: int32(i)}
			errs <- retryConcurrent(func() error {
				return cs[i%2].c.AddPartitions(ctx, "app", "alice", pid, epoch, []Partition{p})
			})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := cs[0].state(t, "app"); len(st.Partitions) != n || st.Status != meta.TxnOngoing {
		t.Fatalf("state after concurrent adds: %d partitions, %s", len(st.Partitions), st.Status)
	}

	// Both run Run: the timeout is acted on once.
	cs[0].run(t)
	cs[1].run(t)
	clk.Add(2 * time.Second)
	waitFor(t, "the timeout abort", func() bool { return cs[0].state(t, "app").Status == meta.TxnCompleteAbort })
	total := len(cs[0].mk.Calls()) + len(cs[1].mk.Calls())
	timeouts := testenv.MetricValue(t, cs[0].c.metrics.timedOut) + testenv.MetricValue(t, cs[1].c.metrics.timedOut)
	if total != 1 || timeouts != 1 {
		t.Fatalf("%d marker calls and %v timeouts across two coordinators, want 1 and 1", total, timeouts)
	}
}

// retryConcurrent calls f again while it fails with the retriable
// CONCURRENT_TRANSACTIONS, as a Kafka client does.
func retryConcurrent(f func() error) error {
	for i := 0; ; i++ {
		err := f()
		if !errors.Is(err, apierr.ErrConcurrentTxns) || i == 20 {
			return err
		}
	}
}

func TestStateSizeBound(t *testing.T) {
	e := newEnv(t, nil, nil, func(c *Config) { c.MaxPartitions = math.MaxInt32 })
	ctx := testCtx(t)
	pid, epoch := e.init(t, "app", -1, -1)
	big := make([]Partition, 12000)
	for i := range big {
		big[i] = Partition{Topic: fmt.Sprintf("a-rather-long-topic-name-%06d", i), TopicID: fmt.Sprintf("%032x", i), Partition: 0}
	}
	err := e.c.AddPartitions(ctx, "app", "alice", pid, epoch, big)
	wantErr(t, "AddPartitions past the state size", err, apierr.ErrInvalidRequest)
}

func TestCopyKeepsNewest(t *testing.T) {
	c := newEnv(t, nil, nil).c
	st := func(id string, pid, rev int64, status meta.TxnStatus) meta.TxnState {
		return meta.TxnState{ID: id, ProducerID: pid, Status: status, Revision: rev,
			Partitions: []meta.TxnPartition{{Topic: "o", TopicID: "t", Partition: 0}}}
	}
	lookup := func(pid int64) (meta.TxnState, bool) {
		c.mu.RLock()
		defer c.mu.RUnlock()
		e, ok := c.byID[c.byPID[pid]]
		if !ok {
			return meta.TxnState{}, false
		}
		return e.st, true
	}
	c.remember(st("a", 1, 10, meta.TxnOngoing))
	c.remember(st("a", 1, 5, meta.TxnEmpty)) // an older read
	if got, _ := lookup(1); got.Revision != 10 {
		t.Fatalf("an older state replaced a newer one: %+v", got)
	}
	// A listing made before the Coordinator's own write keeps the write.
	c.reset([]meta.TxnState{st("a", 1, 8, meta.TxnEmpty), st("b", 2, 9, meta.TxnEmpty)}, 9)
	if got, _ := lookup(1); got.Revision != 10 {
		t.Fatalf("reset dropped a newer state: %+v", got)
	}
	if _, ok := lookup(2); !ok {
		t.Fatal("reset lost b")
	}
	// A new producer id replaces the old one's mapping.
	c.apply(meta.Event[meta.TxnState]{Type: meta.EventPut, Value: st("a", 7, 0, meta.TxnEmpty), Revision: 11})
	if _, ok := lookup(1); ok {
		t.Fatal("the rotated producer id still maps")
	}
	if got, _ := lookup(7); got.Revision != 11 {
		t.Fatalf("after rotation: %+v", got)
	}
	c.apply(meta.Event[meta.TxnState]{Type: meta.EventDelete, Value: meta.TxnState{ID: "b"}, Revision: 12})
	if _, ok := lookup(2); ok {
		t.Fatal("a deleted id stayed")
	}
	// Verify answers a yes from the copy alone.
	c.remember(st("c", 3, 20, meta.TxnOngoing))
	wantErr(t, "Verify from the copy", c.Verify(testCtx(t), 3, 0, "t", 0), nil)
}

// TestRunExpiresUnusedIDs deletes a transactional id with no transaction
// open once it has gone unwritten for IDExpiration, with its producer id's
// key, and keeps an id with a transaction open and one used since. The
// expired id's name can be used again: InitProducer gives it a new
// producer.
func TestRunExpiresUnusedIDs(t *testing.T) {
	e := newEnv(t, nil, nil, func(c *Config) { c.IDExpiration = time.Minute })
	ctx := testCtx(t)
	idlePID, idleEpoch := e.init(t, "idle", -1, -1)
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "idle", "alice", idlePID, idleEpoch, parts(1)), nil)
	wantErr(t, "End", e.c.End(ctx, "idle", "alice", idlePID, idleEpoch, true), nil)
	openPID, openEpoch, err := e.c.InitProducer(ctx, "open", "alice", 10*time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "AddPartitions", e.c.AddPartitions(ctx, "open", "alice", openPID, openEpoch, parts(1)), nil)
	e.run(t)
	e.clock.Add(time.Minute - time.Second)
	e.init(t, "fresh", -1, -1)
	e.clock.Add(2 * time.Second)
	waitFor(t, "the unused id to expire", func() bool { return e.state(t, "idle").Revision == 0 })
	if _, err := e.store.TxnIDOf(ctx, idlePID); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("the expired id's producer id still maps: %v", err)
	}
	if st := e.state(t, "open"); st.Status != meta.TxnOngoing {
		t.Fatalf("the id with a transaction open: %+v", st)
	}
	if st := e.state(t, "fresh"); st.Revision == 0 {
		t.Fatal("the id used within the expiration was deleted")
	}
	if v := testenv.MetricValue(t, e.c.metrics.expired); v != 1 {
		t.Fatalf("expired_total = %v", v)
	}
	wantErr(t, "AddPartitions of the expired producer", e.c.AddPartitions(ctx, "idle", "alice", idlePID, idleEpoch, parts(1)), apierr.ErrUnknownProducerID)
	pid, epoch := e.init(t, "idle", -1, -1)
	wantErr(t, "AddPartitions after InitProducer", e.c.AddPartitions(ctx, "idle", "alice", pid, epoch, parts(1)), nil)
}
