package auth

import (
	"errors"
	"sync"
	"time"
)

// Quota kinds.
const (
	KindProduce = "produce"
	KindFetch   = "fetch"
)

// Defaults of QuotaConfig.
const (
	// DefaultQuotaBurst is how much a principal idle for long may send at
	// once: this many seconds' worth of its rate.
	DefaultQuotaBurst = time.Second
	// DefaultMaxThrottle caps one response's delay; the rest of the debt
	// delays the next responses.
	DefaultMaxThrottle = 30 * time.Second
)

// Rates are byte rates per second; 0 means unlimited.
type Rates struct {
	// ProduceBytesPerSec bounds the record-batch bytes a principal
	// produces.
	ProduceBytesPerSec int64 `json:"produceBytesPerSec,omitempty"`
	// FetchBytesPerSec bounds the record-batch bytes fetched for a
	// principal.
	FetchBytesPerSec int64 `json:"fetchBytesPerSec,omitempty"`
}

func (r Rates) of(kind string) int64 {
	if kind == KindProduce {
		return r.ProduceBytesPerSec
	}
	return r.FetchBytesPerSec
}

// QuotaConfig sets per-principal byte rates. A principal over its rate is
// slowed, not refused: its responses are delayed until its average rate is
// back within the quota (as Kafka's client quotas do).
type QuotaConfig struct {
	// Default applies to every principal without an override, each
	// principal on its own. Zero rates are unlimited.
	Default Rates `json:"default"`
	// Overrides sets other rates for named principals.
	Overrides map[string]Rates `json:"overrides,omitempty"`
	// Burst is how many seconds' worth of its rate an idle principal may
	// use at once. Default DefaultQuotaBurst.
	Burst time.Duration `json:"burst,omitempty"`
	// MaxThrottle caps the delay of one response. Default
	// DefaultMaxThrottle.
	MaxThrottle time.Duration `json:"maxThrottle,omitempty"`
}

func (c *QuotaConfig) setDefaults() {
	if c.Burst == 0 {
		c.Burst = DefaultQuotaBurst
	}
	if c.MaxThrottle == 0 {
		c.MaxThrottle = DefaultMaxThrottle
	}
}

// Validate reports negative rates or durations.
func (c QuotaConfig) Validate() error {
	bad := c.Default.ProduceBytesPerSec < 0 || c.Default.FetchBytesPerSec < 0 || c.Burst < 0 || c.MaxThrottle < 0
	for _, r := range c.Overrides {
		bad = bad || r.ProduceBytesPerSec < 0 || r.FetchBytesPerSec < 0
	}
	if bad {
		return errors.New("auth: quota: rates and durations must not be negative")
	}
	return nil
}

// enabled reports whether any rate is set.
func (c QuotaConfig) enabled() bool {
	if c.Default != (Rates{}) {
		return true
	}
	for _, r := range c.Overrides {
		if r != (Rates{}) {
			return true
		}
	}
	return false
}

// quotas holds one token bucket per principal and kind. A bucket's level
// may go below zero: the debt, which delays the response by debt/rate.
type quotas struct {
	cfg QuotaConfig
	now func() time.Time

	mu      sync.Mutex // guards buckets
	buckets map[bucketKey]*bucket
}

type bucketKey struct{ principal, kind string }

type bucket struct {
	level float64 // bytes available; negative is debt
	last  time.Time
}

func newQuotas(cfg QuotaConfig) *quotas {
	cfg.setDefaults()
	return &quotas{cfg: cfg, now: time.Now, buckets: map[bucketKey]*bucket{}}
}

func (q *quotas) rate(principal, kind string) int64 {
	if r, ok := q.cfg.Overrides[principal]; ok {
		return r.of(kind)
	}
	return q.cfg.Default.of(kind)
}

// charge takes n bytes from the principal's bucket and returns how long
// the response must be delayed (0 within the quota).
func (q *quotas) charge(principal, kind string, n int) time.Duration {
	rate := q.rate(principal, kind)
	if rate <= 0 || n <= 0 {
		return 0
	}
	burst := float64(rate) * q.cfg.Burst.Seconds()
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	k := bucketKey{principal, kind}
	b := q.buckets[k]
	if b == nil {
		b = &bucket{level: burst, last: now}
		q.buckets[k] = b
	}
	b.level = min(burst, b.level+float64(rate)*now.Sub(b.last).Seconds())
	b.last = now
	b.level -= float64(n)
	if b.level >= 0 {
		return 0
	}
	d := time.Duration(-b.level / float64(rate) * float64(time.Second))
	return min(d, q.cfg.MaxThrottle)
}
