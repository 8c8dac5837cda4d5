package client

import (
	"testing"
	"time"
)

// TestGiveUpTime: a member drops its partitions a tenth of the session
// timeout the coordinator answered with (at most 1 s) before the session,
// counted from when the heartbeat was sent, ends.
func TestGiveUpTime(t *testing.T) {
	sent := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ session, want time.Duration }{
		{30 * time.Second, 29 * time.Second},
		{10 * time.Second, 9 * time.Second},
		{5 * time.Second, 4500 * time.Millisecond},
		{time.Second, 900 * time.Millisecond},
		{0, 9 * time.Second}, // no answer: the coordinator default
	} {
		if got := giveUpTime(sent, tt.session).Sub(sent); got != tt.want {
			t.Errorf("session %v: gives up after %v, want %v", tt.session, got, tt.want)
		}
	}
}
