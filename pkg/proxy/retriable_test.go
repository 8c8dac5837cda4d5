package proxy

import (
	"testing"

	"github.com/strata-mq/strata/pkg/apierr"
)

// TestRetriable pins which broker errors the router retries itself:
// OUT_OF_ORDER_SEQUENCE goes back to the producer, which alone can resend
// the request that must come first.
func TestRetriable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"not owner", apierr.Errorf(apierr.ErrNotOwner, "moved"), true},
		{"storage", apierr.Errorf(apierr.ErrStorageUnavailable, "put"), true},
		{"out of order", apierr.Errorf(apierr.ErrOutOfOrderSequence, "early"), false},
		{"invalid", apierr.Errorf(apierr.ErrInvalidRequest, "bad"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// As the router sees it: a status from the broker, decoded.
			err := apierr.FromStatus(apierr.Status(tt.err))
			if got := retriable(err); got != tt.want {
				t.Fatalf("retriable(%v) = %v, want %v", err, got, tt.want)
			}
			if !apierr.Retriable(err) && tt.name == "out of order" {
				t.Fatalf("OUT_OF_ORDER_SEQUENCE must stay retriable for the producer")
			}
		})
	}
}
