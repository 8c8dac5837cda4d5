// Package backoff is the one retry delay Strata's loops use: exponential
// growth between a floor and a cap, with jitter so that many processes
// retrying the same failure (etcd or a peer restarting) do not retry in
// step, and a wait that returns as soon as its context ends.
//
// Backoff wraps cenkalti/backoff/v5's ExponentialBackOff rather than
// growing a second implementation; it is not safe for concurrent use, so
// each retry loop owns its own. Delay serves loops that count attempts.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"

	cb "github.com/cenkalti/backoff/v5"
)

const (
	// Jitter is the randomisation factor: each delay is drawn uniformly from
	// ±50 % of the nominal one, enough to spread a fleet's retries apart.
	Jitter = 0.5
	// Multiplier is the growth per failed attempt: doubling reaches the cap
	// in a handful of attempts without hammering a peer that is down.
	Multiplier = 2
)

// Backoff hands out successive retry delays.
type Backoff struct {
	b *cb.ExponentialBackOff
}

// New returns a Backoff whose first delay is about min and whose delays
// never exceed max (plus jitter). min must be positive and max ≥ min.
func New(min, max time.Duration) *Backoff {
	b := &cb.ExponentialBackOff{
		InitialInterval:     min,
		RandomizationFactor: Jitter,
		Multiplier:          Multiplier,
		MaxInterval:         max,
	}
	b.Reset()
	return &Backoff{b: b}
}

// Next returns the delay before the next attempt and grows the one after.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts over from the first delay, after a success.
func (b *Backoff) Reset() { b.b.Reset() }

// Wait sleeps for Next, or until ctx ends, in which case it returns
// ctx.Err().
func (b *Backoff) Wait(ctx context.Context) error {
	return Sleep(ctx, b.Next())
}

// Delay is the delay before retry number attempt (1-based) for a loop that
// counts attempts instead of keeping a Backoff: lo doubled per attempt,
// capped at hi, with the same jitter. lo may be 0 (no wait).
func Delay(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if d <= 0 {
		return 0
	}
	spread := time.Duration(Jitter * float64(d))
	return d - spread + time.Duration(rand.Int64N(int64(2*spread)+1))
}

// Sleep waits for d or until ctx ends, whichever is first, and returns
// ctx.Err() in the second case. A d ≤ 0 only reports ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
