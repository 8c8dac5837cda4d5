package apierr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// TestRoundTrip sends every kind of server error through Status and back
// through FromStatus, as a gRPC call would: the client matches the same
// sentinel and sees the right code and retriability.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		want      error
		code      codes.Code
		reason    string
		retriable bool
	}{
		{"not owner", apierr.Errorf(apierr.ErrNotOwner, "partition 3"), apierr.ErrNotOwner, codes.Unavailable, "NOT_OWNER", true},
		{"fenced commit", fmt.Errorf("flush: %w", meta.ErrFenced), apierr.ErrNotOwner, codes.Unavailable, "NOT_OWNER", true},
		{"unknown topic", fmt.Errorf("x: %w", meta.ErrTopicNotFound), apierr.ErrUnknownTopic, codes.NotFound, "UNKNOWN_TOPIC", false},
		{"topic exists", meta.ErrTopicExists, apierr.ErrTopicExists, codes.AlreadyExists, "TOPIC_EXISTS", false},
		{"invalid topic", meta.ErrInvalidTopic, apierr.ErrInvalidTopic, codes.InvalidArgument, "INVALID_TOPIC", false},
		{"invalid group", meta.ValidateGroupName(""), apierr.ErrInvalidGroupID, codes.InvalidArgument, "INVALID_GROUP_ID", false},
		{"session timeout", apierr.ErrInvalidSessionTimeout, apierr.ErrInvalidSessionTimeout, codes.InvalidArgument, "INVALID_SESSION_TIMEOUT", false},
		{"partition range", apierr.ErrPartitionRange, apierr.ErrPartitionRange, codes.OutOfRange, "PARTITION_OUT_OF_RANGE", false},
		{"offset range", apierr.ErrOffsetOutOfRange, apierr.ErrOffsetOutOfRange, codes.OutOfRange, "OFFSET_OUT_OF_RANGE", false},
		{"corrupt", apierr.ErrCorruptBatch, apierr.ErrCorruptBatch, codes.InvalidArgument, "CORRUPT_BATCH", false},
		{"too large", apierr.ErrRecordTooLarge, apierr.ErrRecordTooLarge, codes.InvalidArgument, "RECORD_TOO_LARGE", false},
		{"storage", apierr.ErrStorageUnavailable, apierr.ErrStorageUnavailable, codes.Unavailable, "STORAGE_UNAVAILABLE", true},
		{"deadline", context.DeadlineExceeded, apierr.ErrTimeout, codes.DeadlineExceeded, "TIMEOUT", true},
		{"not leader", apierr.ErrNotLeader, apierr.ErrNotLeader, codes.Unavailable, "NOT_LEADER", true},
		{"shutting down", apierr.ErrShuttingDown, apierr.ErrShuttingDown, codes.Unavailable, "SHUTTING_DOWN", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := apierr.Status(tt.err)
			st, ok := status.FromError(wire)
			if !ok || st.Code() != tt.code {
				t.Fatalf("Status(%v) = %v, want code %v", tt.err, wire, tt.code)
			}
			got := apierr.FromStatus(wire)
			if !errors.Is(got, tt.want) {
				t.Fatalf("FromStatus = %v, does not match %v", got, tt.want)
			}
			var e *apierr.Error
			if !errors.As(got, &e) || e.Reason != tt.reason || e.Code != tt.code {
				t.Fatalf("FromStatus = %#v, want reason %s", got, tt.reason)
			}
			if apierr.Retriable(got) != tt.retriable {
				t.Fatalf("Retriable = %v, want %v", apierr.Retriable(got), tt.retriable)
			}
			// Passing it on again (proxy to client) keeps it intact.
			again := apierr.FromStatus(apierr.Status(got))
			if !errors.Is(again, tt.want) {
				t.Fatalf("second hop lost the reason: %v", again)
			}
			// As one part of a multi-part call, and passed on again from
			// there, it is the same error.
			for hop, part := range []error{apierr.FromPart(apierr.ToPart(tt.err)), apierr.FromPart(apierr.ToPart(apierr.FromPart(apierr.ToPart(tt.err))))} {
				if !errors.As(part, &e) || !errors.Is(part, tt.want) || e.Reason != tt.reason || e.Code != tt.code || apierr.Retriable(part) != tt.retriable {
					t.Fatalf("part error after %d hops = %#v, want %v (%s)", hop+1, part, tt.want, tt.reason)
				}
			}
		})
	}
}

func TestPartErrorEdges(t *testing.T) {
	if apierr.ToPart(nil) != nil || apierr.FromPart(nil) != nil {
		t.Fatal("nil must stay nil")
	}
	// A transport failure without a reason keeps its code, so it stays
	// retriable as a part too.
	got := apierr.FromPart(apierr.ToPart(status.Error(codes.Unavailable, "connection refused")))
	if !apierr.Retriable(got) {
		t.Fatalf("Unavailable part error %v is not retriable", got)
	}
	// A part error with code OK is malformed, but still an error.
	if err := apierr.FromPart(&stratav1.PartError{Message: "?"}); err == nil || apierr.Retriable(err) {
		t.Fatalf("FromPart(code OK) = %v, want a non-retriable error", err)
	}
}

func TestUnknownAndTransportErrors(t *testing.T) {
	if st, _ := status.FromError(apierr.Status(errors.New("boom"))); st.Code() != codes.Internal {
		t.Fatalf("unknown error became %v, want Internal", st.Code())
	}
	if st, _ := status.FromError(apierr.Status(context.Canceled)); st.Code() != codes.Canceled {
		t.Fatalf("canceled became %v", st.Code())
	}
	// A connection failure has no Strata detail but is worth retrying.
	transport := apierr.FromStatus(status.Error(codes.Unavailable, "connection refused"))
	if !apierr.Retriable(transport) {
		t.Fatal("transport Unavailable not retriable")
	}
	if apierr.Retriable(apierr.FromStatus(status.Error(codes.InvalidArgument, "bad"))) {
		t.Fatal("InvalidArgument retriable")
	}
	if apierr.Status(nil) != nil || apierr.FromStatus(nil) != nil {
		t.Fatal("nil not preserved")
	}
}

// TestKafkaCode checks that every sentinel has a Kafka code in the table,
// that wrapped errors and received statuses keep it, and that unknown
// errors are UNKNOWN_SERVER_ERROR.
func TestKafkaCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want *kerr.Error
	}{
		{"not owner", fmt.Errorf("flush: %w", meta.ErrFenced), kerr.NotLeaderForPartition},
		{"unknown topic", apierr.Errorf(apierr.ErrUnknownTopic, "x"), kerr.UnknownTopicOrPartition},
		{"offset range", apierr.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
		{"corrupt", apierr.ErrCorruptBatch, kerr.CorruptMessage},
		{"too large", apierr.ErrRecordTooLarge, kerr.MessageTooLarge},
		{"deadline", context.DeadlineExceeded, kerr.RequestTimedOut},
		{"out of order", apierr.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{"denied", apierr.ErrPermissionDenied, kerr.TopicAuthorizationFailed},
		{"from status", apierr.FromStatus(apierr.Status(apierr.ErrTopicExists)), kerr.TopicAlreadyExists},
		{"invalid group id", meta.ValidateGroupName("a/b"), kerr.InvalidGroupID},
		{"group id from status", apierr.FromStatus(apierr.Status(meta.ValidateGroupName(""))), kerr.InvalidGroupID},
		{"session timeout from status", apierr.FromStatus(apierr.Status(apierr.ErrInvalidSessionTimeout)), kerr.InvalidSessionTimeout},
		{"invalid request", apierr.ErrInvalidRequest, kerr.InvalidRequest},
		{"transport", apierr.FromStatus(status.Error(codes.Unavailable, "dial")), kerr.RequestTimedOut},
		{"unknown", errors.New("boom"), kerr.UnknownServerError},
	}
	for _, tc := range tests {
		if got := apierr.KafkaCode(tc.err); got != tc.want.Code {
			t.Errorf("%s: KafkaCode = %d (%v), want %d (%s)", tc.name, got, kerr.ErrorForCode(got), tc.want.Code, tc.want.Message)
		}
	}
	if got := apierr.KafkaCode(nil); got != 0 {
		t.Errorf("KafkaCode(nil) = %d, want 0", got)
	}
}

// TestNarrowerInvalidRequests: the reasons split off INVALID_REQUEST keep
// matching ErrInvalidRequest on both sides of the wire, so a caller that
// matched the general sentinel before still does.
func TestNarrowerInvalidRequests(t *testing.T) {
	for _, err := range []error{meta.ValidateGroupName(""), apierr.Errorf(apierr.ErrInvalidSessionTimeout, "0 ms")} {
		for _, e := range []error{err, apierr.FromStatus(apierr.Status(err))} {
			if !errors.Is(e, apierr.ErrInvalidRequest) {
				t.Errorf("%v (%T) does not match ErrInvalidRequest", e, e)
			}
		}
	}
	if errors.Is(apierr.ErrInvalidRequest, apierr.ErrInvalidGroupID) {
		t.Error("ErrInvalidRequest matches ErrInvalidGroupID")
	}
}
