package broker

import (
	"errors"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

// TestKeepObjectBuffer checks which memory a PUT worker builds its next
// object in: the stored object's, unless the PUT failed (the transport may
// still read the body it gave up on) or the object is too large to keep.
func TestKeepObjectBuffer(t *testing.T) {
	s := &Server{cfg: Config{FlushBytes: 1 << 10}}
	old := make([]byte, 0, 1<<10)
	inOld := old[:100]
	fresh := make([]byte, 100, 1<<10)
	huge := make([]byte, 100, 4<<10)
	failed := errors.New("PUT failed")
	same := func(a, b []byte) bool { return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0] }
	for _, tc := range []struct {
		name     string
		old, obj []byte
		err      error
		want     []byte // nil: nothing kept
	}{
		{"stored, built in the old buffer", old, inOld, nil, old},
		{"stored, built in new memory", old, fresh, nil, fresh},
		{"stored, first object", nil, fresh, nil, fresh},
		{"stored, too large to keep", old, huge, nil, old},
		{"failed, built in the old buffer", old, inOld, failed, nil},
		{"failed, built in new memory", old, fresh, failed, old},
	} {
		got := s.keepObjectBuffer(tc.old, tc.obj, tc.err)
		switch {
		case tc.want == nil && cap(got) != 0:
			t.Errorf("%s: kept a buffer of %d bytes, want none", tc.name, cap(got))
		case tc.want != nil && !same(got, tc.want):
			t.Errorf("%s: kept the wrong buffer", tc.name)
		case len(got) != 0:
			t.Errorf("%s: kept buffer has length %d, want 0", tc.name, len(got))
		}
	}
}

// TestIdleFlushWaitsForAdmissions: with no flush in flight a buffered
// produce goes at once, but not while another produce that arrived with
// it is still being admitted: the two share one flush (one PUT), so the
// requests of one proxy call are not split over two.
func TestIdleFlushWaitsForAdmissions(t *testing.T) {
	// An hour's interval: only the end of the admissions cuts the flush.
	e := newEnv(t, func(c *Config) { c.FlushInterval = time.Hour })
	e.createTopic(t, "together", 2)
	puts := e.startedPuts()
	ctx := testCtx(t)
	e.b.admitting.Add(1) // a produce on its way in
	done := make(chan error, 2)
	buffered := 0
	for p := range int32(2) {
		go func() {
			_, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "together", Partition: p, Batches: batch(t, "r", 1)})
			done <- err
		}()
		buffered++
		eventually(t, func() bool {
			e.b.mu.Lock()
			defer e.b.mu.Unlock()
			return len(e.b.dirty) == buffered
		})
	}
	if n := len(puts); n != 0 {
		t.Fatalf("%d PUTs while a produce was being admitted, want 0", n)
	}
	if e.b.admitting.Add(-1) == 0 { // the produce on its way was refused
		e.b.kickFlusher()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(puts); n != 1 {
		t.Fatalf("%d PUTs for two produces admitted together, want 1", n)
	}
}

// TestStreamMoreHoldsFlush: on a produce stream, a message marked more
// holds an idle flush until the produce behind it is admitted, so the two
// share one PUT; a message marked more with nothing behind it is written
// anyway, once the flush interval ends the hold.
func TestStreamMoreHoldsFlush(t *testing.T) {
	// An hour's interval: only the second produce's admission cuts the
	// flush.
	e := newEnv(t, func(c *Config) { c.FlushInterval = time.Hour })
	e.createTopic(t, "more", 2)
	puts := e.startedPuts()
	ctx := testCtx(t)
	st, err := e.cli.ProduceStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(id uint64, p int32, more bool) {
		t.Helper()
		req := &stratav1.ProduceRequest{Topic: "more", Partition: p, Batches: batch(t, "r", 1)}
		if err := st.Send(&stratav1.ProduceStreamRequest{Id: id, Produce: req, More: more}); err != nil {
			t.Fatal(err)
		}
	}
	send(1, 0, true)
	eventually(t, func() bool {
		e.b.mu.Lock()
		defer e.b.mu.Unlock()
		return len(e.b.dirty) == 1
	})
	if n := len(puts); n != 0 {
		t.Fatalf("%d PUTs while the produce announced as next has not come, want 0", n)
	}
	send(2, 1, false)
	for range 2 {
		if r, err := st.Recv(); err != nil || r.GetError() != nil {
			t.Fatalf("answer %v, %v", r, err)
		}
	}
	if n := len(puts); n != 1 {
		t.Fatalf("%d PUTs for a produce and the one it announced, want 1", n)
	}
}

// TestStreamMoreHoldEnds: a message marked more whose next produce never
// comes holds a flush for the flush interval at most.
func TestStreamMoreHoldEnds(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FlushInterval = 20 * time.Millisecond })
	e.createTopic(t, "alone", 1)
	st, err := e.cli.ProduceStream(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	req := &stratav1.ProduceRequest{Topic: "alone", Partition: 0, Batches: batch(t, "r", 1)}
	if err := st.Send(&stratav1.ProduceStreamRequest{Id: 1, Produce: req, More: true}); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Recv(); err != nil || r.GetError() != nil {
		t.Fatalf("answer %v, %v", r, err)
	}
	eventually(t, func() bool { return e.b.admitting.Load() == 0 })
}

// startedPuts returns a channel that gets the key of each PUT the broker
// starts (up to 10 unread).
func (e *env) startedPuts() chan string {
	puts := make(chan string, 10)
	e.store.mu.Lock()
	e.store.started = puts
	e.store.mu.Unlock()
	return puts
}
