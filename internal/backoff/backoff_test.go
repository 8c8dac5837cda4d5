package backoff

import (
	"context"
	"errors"
	"testing"
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
