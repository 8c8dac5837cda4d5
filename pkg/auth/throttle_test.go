package auth

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestThrottleWaits runs Guard.Throttle on synctest's fake clock: a
// principal sending as fast as its delays allow is held to its produce
// rate, and a request whose context ends during its delay returns then,
// with the context's error.
func TestThrottleWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := New(Config{Quota: QuotaConfig{Default: Rates{ProduceBytesPerSec: 1000}, Burst: 100 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		p := Principal{Name: "alice"}
		start := time.Now()
		sent := 0
		for range 40 {
			if err := g.Throttle(context.Background(), p, KindProduce, 250); err != nil {
				t.Fatal(err)
			}
			sent += 250
		}
		// The burst (100 bytes) is free; the rest goes at 1000 bytes/s.
		if took, want := time.Since(start), time.Duration(sent-100)*time.Millisecond; took < want*99/100 || took > want*101/100 {
			t.Fatalf("%d bytes took %v, want about %v at 1000 bytes/s", sent, took, want)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start = time.Now()
		err = g.Throttle(ctx, p, KindProduce, 1<<20)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 2*time.Second {
			t.Fatalf("throttle past a 2s deadline = %v after %v, want context.DeadlineExceeded after 2s", err, time.Since(start))
		}
	})
}
