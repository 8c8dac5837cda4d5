package backoff

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestDelaysGrowToTheCapWithJitter checks the two promises every caller
// relies on: delays grow from about min, never exceed max plus jitter, and
// are not all the same (jitter spreads a fleet's retries).
func TestDelaysGrowToTheCapWithJitter(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 2 * time.Second
	b := New(lo, hi)
	first := b.Next()
	if first < lo/2 || first > lo*3/2 {
		t.Fatalf("first delay %v, want within ±50%% of %v", first, lo)
	}
	seen := map[time.Duration]bool{}
	for range 50 {
		d := b.Next()
		if d > hi*3/2 {
			t.Fatalf("delay %v exceeds the cap %v plus jitter", d, hi)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays in 50: no jitter", len(seen))
	}
	b.Reset()
	if d := b.Next(); d > lo*3/2 {
		t.Fatalf("after Reset the delay is %v, want about %v", d, lo)
	}
}

// TestWaitHonoursContext: a cancelled context ends the wait at once, with
// the context's error.
func TestWaitHonoursContext(t *testing.T) {
	b := New(time.Hour, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
}

// TestDelayByAttempt: the attempt-counting form doubles from lo, stops at
// hi, stays within the jitter, and is 0 when lo is 0.
func TestDelayByAttempt(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, time.Second
	for attempt, nominal := range map[int]time.Duration{1: lo, 2: 2 * lo, 3: 4 * lo, 4: 8 * lo, 5: hi, 30: hi} {
		for range 20 {
			d := Delay(lo, hi, attempt)
			if d < nominal/2 || d > nominal*3/2 {
				t.Fatalf("Delay(attempt %d) = %v, want within ±50%% of %v", attempt, d, nominal)
			}
		}
	}
	if d := Delay(0, hi, 3); d != 0 {
		t.Fatalf("Delay with lo 0 = %v, want 0", d)
	}
}

// TestWaitTakesItsDelay runs Wait on synctest's fake clock: it returns
// nil after about the backoff's delay (within the jitter) and no sooner,
// and a deadline that falls inside a wait ends it at the deadline.
func TestWaitTakesItsDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(time.Minute, time.Hour)
		start := time.Now()
		if err := b.Wait(context.Background()); err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if waited := time.Since(start); waited < 30*time.Second || waited > 90*time.Second {
			t.Fatalf("Wait took %v, want the first delay, about 1m ± 50%%", waited)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start = time.Now()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sleep past the deadline = %v, want context.DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != 10*time.Second {
			t.Fatalf("Sleep past a 10s deadline returned after %v", waited)
		}
	})
}
