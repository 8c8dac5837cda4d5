// Package apierr is the one table between Strata's errors, gRPC statuses
// and Kafka error codes. Servers return Go errors — this package's sentinels, or the
// sentinels of the package that failed, wrapped with %w — and the gRPC
// interceptor in pkg/rpc turns them into statuses with Status. Clients turn
// statuses back into errors with FromStatus and match them with errors.Is
// against the sentinels below, never by message text.
//
// On the wire every status carries a google.rpc.ErrorInfo detail whose
// reason is a strata.v1.Reason name (for example "NOT_OWNER"). The Kafka
// front end (pkg/kafka) answers the same errors with the Kafka error code
// of the same row (KafkaCode), so an error means one thing on both
// protocols.
package apierr

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

// Domain is the ErrorInfo domain of Strata's errors.
const Domain = "strata.v1"

// The errors of Strata's API, one per strata.v1.Reason.
var (
	ErrNotOwner           = errors.New("strata: broker does not own the partition")
	ErrNotLeader          = errors.New("strata: coordinator is not the leader")
	ErrUnknownTopic       = errors.New("strata: unknown topic")
	ErrTopicExists        = errors.New("strata: topic already exists")
	ErrInvalidTopic       = errors.New("strata: invalid topic")
	ErrPartitionRange     = errors.New("strata: partition out of range")
	ErrOffsetOutOfRange   = errors.New("strata: offset out of range")
	ErrCorruptBatch       = errors.New("strata: corrupt record batch")
	ErrRecordTooLarge     = errors.New("strata: record batch too large")
	ErrInvalidRequest     = errors.New("strata: invalid request")
	ErrStorageUnavailable = errors.New("strata: storage unavailable")
	ErrTimeout            = errors.New("strata: timed out")
	ErrShuttingDown       = errors.New("strata: server shutting down")
	// ErrFencedMember: a consumer group member's epoch is stale; it must
	// rejoin, and its commits are rejected.
	ErrFencedMember = errors.New("strata: consumer group member fenced (stale member epoch)")
	// ErrUnknownMember: the group has no such member (it left or its
	// session timed out); it must rejoin.
	ErrUnknownMember = errors.New("strata: unknown consumer group member")
	// ErrGroupNotEmpty: the operation needs a group without live members.
	ErrGroupNotEmpty = errors.New("strata: consumer group has live members")
	// ErrOutOfOrderSequence: an idempotent producer's request arrived
	// before the one preceding it in sequence; the producer sends it again
	// once the earlier request is resolved.
	ErrOutOfOrderSequence = errors.New("strata: out of order sequence")
	// ErrUnauthenticated: no valid bearer token or client certificate,
	// and anonymous access is off.
	ErrUnauthenticated = errors.New("strata: unauthenticated")
	// ErrPermissionDenied: no ACL allows the principal the operation.
	ErrPermissionDenied = errors.New("strata: permission denied")
	// ErrStorageRejected: object storage refused the request for a reason
	// retrying does not fix (missing bucket, wrong credentials, missing
	// permission); the message names it.
	ErrStorageRejected = errors.New("strata: storage rejected the request")
	// ErrRebalanceInProgress: a classic consumer group is rebalancing;
	// the member rejoins.
	ErrRebalanceInProgress = errors.New("strata: consumer group rebalance in progress")
	// ErrIllegalGeneration: a classic member's generation is not the
	// group's; it rejoins, and its commits are rejected.
	ErrIllegalGeneration = errors.New("strata: illegal consumer group generation")
	// ErrInconsistentGroupProtocol: the group runs the other group
	// protocol, or the member shares no assignor with the group.
	ErrInconsistentGroupProtocol = errors.New("strata: inconsistent consumer group protocol")
	// ErrUnknownGroup: the consumer group has nothing stored.
	ErrUnknownGroup = errors.New("strata: unknown consumer group")
	// ErrProducerFenced: a transactional producer's epoch is older than
	// its transactional id's; another instance took the id over.
	ErrProducerFenced = errors.New("strata: producer fenced by a newer epoch")
	// ErrInvalidTxnState: the transaction's state does not allow the
	// request.
	ErrInvalidTxnState = errors.New("strata: invalid transaction state")
	// ErrConcurrentTxns: the id's previous transaction is still being
	// completed; retry.
	ErrConcurrentTxns = errors.New("strata: previous transaction still completing")
	// ErrUnknownProducerID: the producer id is not the transactional id's.
	ErrUnknownProducerID = errors.New("strata: producer id does not match the transactional id")
	// ErrInvalidTxnTimeout: the transaction timeout is out of range.
	ErrInvalidTxnTimeout = errors.New("strata: invalid transaction timeout")
	// ErrInvalidGroupID: the consumer group id is empty or cannot be
	// stored. It is an ErrInvalidRequest too (errors.Is), as it was
	// before it had a reason of its own.
	ErrInvalidGroupID = Alias("strata: invalid consumer group id", ErrInvalidRequest)
	// ErrInvalidSessionTimeout: a member's session timeout is out of
	// range. It is an ErrInvalidRequest too.
	ErrInvalidSessionTimeout = Alias("strata: invalid session timeout", ErrInvalidRequest)
)

// entry ties a reason to its gRPC code, its Kafka error code and its
// sentinel.
type entry struct {
	reason    stratav1.Reason
	code      codes.Code
	sentinel  error
	retriable bool
	// kafka is the Kafka error code. Where Kafka names the code after the
	// resource (authorization, coordinators), the Kafka front end picks
	// the resource's variant itself.
	kafka *kerr.Error
}

// table is the translation, checked in order: the first entry whose
// sentinel matches (errors.Is) wins. Other packages' errors join it by
// wrapping a sentinel (see Alias).
var table = []entry{
	{stratav1.Reason_NOT_OWNER, codes.Unavailable, ErrNotOwner, true, kerr.NotLeaderForPartition},
	{stratav1.Reason_NOT_LEADER, codes.Unavailable, ErrNotLeader, true, kerr.CoordinatorNotAvailable},
	{stratav1.Reason_UNKNOWN_TOPIC, codes.NotFound, ErrUnknownTopic, false, kerr.UnknownTopicOrPartition},
	{stratav1.Reason_TOPIC_EXISTS, codes.AlreadyExists, ErrTopicExists, false, kerr.TopicAlreadyExists},
	{stratav1.Reason_INVALID_TOPIC, codes.InvalidArgument, ErrInvalidTopic, false, kerr.InvalidTopicException},
	{stratav1.Reason_PARTITION_OUT_OF_RANGE, codes.OutOfRange, ErrPartitionRange, false, kerr.UnknownTopicOrPartition},
	{stratav1.Reason_OFFSET_OUT_OF_RANGE, codes.OutOfRange, ErrOffsetOutOfRange, false, kerr.OffsetOutOfRange},
	{stratav1.Reason_CORRUPT_BATCH, codes.InvalidArgument, ErrCorruptBatch, false, kerr.CorruptMessage},
	{stratav1.Reason_RECORD_TOO_LARGE, codes.InvalidArgument, ErrRecordTooLarge, false, kerr.MessageTooLarge},
	// Kinds of invalid request with a reason of their own: before the
	// general row, which their sentinels also match.
	{stratav1.Reason_INVALID_GROUP_ID, codes.InvalidArgument, ErrInvalidGroupID, false, kerr.InvalidGroupID},
	{stratav1.Reason_INVALID_SESSION_TIMEOUT, codes.InvalidArgument, ErrInvalidSessionTimeout, false, kerr.InvalidSessionTimeout},
	{stratav1.Reason_INVALID_REQUEST, codes.InvalidArgument, ErrInvalidRequest, false, kerr.InvalidRequest},
	{stratav1.Reason_STORAGE_UNAVAILABLE, codes.Unavailable, ErrStorageUnavailable, true, kerr.KafkaStorageError},
	{stratav1.Reason_STORAGE_REJECTED, codes.FailedPrecondition, ErrStorageRejected, false, kerr.KafkaStorageError},
	{stratav1.Reason_TIMEOUT, codes.DeadlineExceeded, ErrTimeout, true, kerr.RequestTimedOut},
	{stratav1.Reason_TIMEOUT, codes.DeadlineExceeded, context.DeadlineExceeded, true, kerr.RequestTimedOut},
	{stratav1.Reason_SHUTTING_DOWN, codes.Unavailable, ErrShuttingDown, true, kerr.NotLeaderForPartition},
	{stratav1.Reason_FENCED_MEMBER, codes.FailedPrecondition, ErrFencedMember, false, kerr.FencedMemberEpoch},
	{stratav1.Reason_UNKNOWN_MEMBER, codes.NotFound, ErrUnknownMember, false, kerr.UnknownMemberID},
	{stratav1.Reason_GROUP_NOT_EMPTY, codes.FailedPrecondition, ErrGroupNotEmpty, false, kerr.NonEmptyGroup},
	{stratav1.Reason_OUT_OF_ORDER_SEQUENCE, codes.FailedPrecondition, ErrOutOfOrderSequence, true, kerr.OutOfOrderSequenceNumber},
	{stratav1.Reason_UNAUTHENTICATED, codes.Unauthenticated, ErrUnauthenticated, false, kerr.SaslAuthenticationFailed},
	{stratav1.Reason_PERMISSION_DENIED, codes.PermissionDenied, ErrPermissionDenied, false, kerr.TopicAuthorizationFailed},
	{stratav1.Reason_REBALANCE_IN_PROGRESS, codes.FailedPrecondition, ErrRebalanceInProgress, false, kerr.RebalanceInProgress},
	{stratav1.Reason_ILLEGAL_GENERATION, codes.FailedPrecondition, ErrIllegalGeneration, false, kerr.IllegalGeneration},
	{stratav1.Reason_INCONSISTENT_GROUP_PROTOCOL, codes.FailedPrecondition, ErrInconsistentGroupProtocol, false, kerr.InconsistentGroupProtocol},
	{stratav1.Reason_UNKNOWN_GROUP, codes.NotFound, ErrUnknownGroup, false, kerr.GroupIDNotFound},
	{stratav1.Reason_PRODUCER_FENCED, codes.FailedPrecondition, ErrProducerFenced, false, kerr.InvalidProducerEpoch},
	{stratav1.Reason_INVALID_TXN_STATE, codes.FailedPrecondition, ErrInvalidTxnState, false, kerr.InvalidTxnState},
	{stratav1.Reason_CONCURRENT_TRANSACTIONS, codes.Unavailable, ErrConcurrentTxns, true, kerr.ConcurrentTransactions},
	{stratav1.Reason_UNKNOWN_PRODUCER_ID, codes.FailedPrecondition, ErrUnknownProducerID, false, kerr.InvalidProducerIDMapping},
	{stratav1.Reason_INVALID_TXN_TIMEOUT, codes.InvalidArgument, ErrInvalidTxnTimeout, false, kerr.InvalidTransactionTimeout},
}

func lookup(err error) (entry, bool) {
	for _, e := range table {
		if errors.Is(err, e.sentinel) {
			return e, true
		}
	}
	return entry{}, false
}

func byReason(reason string) (entry, bool) {
	for _, e := range table {
		if e.reason.String() == reason {
			return e, true
		}
	}
	return entry{}, false
}

// KafkaCode returns the Kafka error code of err: 0 for nil, the code of
// its row in the table, UNKNOWN_SERVER_ERROR for an error the table does
// not know. A server still prefers a resource-specific code where Kafka
// has one (GROUP_AUTHORIZATION_FAILED for a group, say).
func KafkaCode(err error) int16 {
	if err == nil {
		return 0
	}
	if e, ok := lookup(err); ok {
		return e.kafka.Code
	}
	if Retriable(err) { // a transport failure without a reason
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// Status converts a server-side error to a gRPC status error. An error that
// already is a status passes through; context.Canceled becomes Canceled;
// an error the table does not know becomes Internal.
func Status(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	e, ok := lookup(err)
	if !ok {
		return status.Error(codes.Internal, err.Error())
	}
	st, derr := status.New(e.code, err.Error()).WithDetails(&errdetails.ErrorInfo{Reason: e.reason.String(), Domain: Domain})
	if derr != nil {
		return status.Error(e.code, err.Error())
	}
	return st.Err()
}

// Error is an API error received from a server. It unwraps to the sentinel
// of its reason, so errors.Is(err, apierr.ErrNotOwner) works on it.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the strata.v1.Reason name, empty if the server sent none.
	Reason string
	// Message is the server's message, for people.
	Message string

	sentinel error
	status   *status.Status
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel of the reason, if known.
func (e *Error) Unwrap() error { return e.sentinel }

// GRPCStatus returns the original status, so a proxy can pass the error on
// unchanged.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// FromStatus converts an error returned by a gRPC call into an *Error that
// matches this package's sentinels. A status without Strata detail is
// classified by its code alone (Unavailable → ErrStorageUnavailable style
// retriable transport errors keep their code). Non-status errors pass
// through.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == Domain {
			out.Reason = info.Reason
			if e, ok := byReason(info.Reason); ok {
				out.sentinel = e.sentinel
			}
		}
	}
	if out.sentinel == nil && st.Code() == codes.DeadlineExceeded {
		out.sentinel = ErrTimeout
	}
	return out
}

// Retriable reports whether a request that failed with err may succeed if
// sent again: a retriable reason, or a transport-level Unavailable status
// (the server was unreachable).
func Retriable(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Reason == "" {
		return apiErr.Code == codes.Unavailable || apiErr.Code == codes.DeadlineExceeded
	}
	if e, ok := lookup(err); ok {
		return e.retriable
	}
	if st, ok := status.FromError(err); ok {
		return st.Code() == codes.Unavailable
	}
	return false
}

// Alias returns a package's own sentinel error with message msg that
// matches sentinel under errors.Is, so that it is translated like sentinel:
//
//	var ErrFenced = apierr.Alias("meta: fenced", apierr.ErrNotOwner)
//
// Callers still tell the two apart: errors.Is(err, ErrFenced) holds only for
// the alias.
func Alias(msg string, sentinel error) error { return &alias{msg: msg, sentinel: sentinel} }

type alias struct {
	msg      string
	sentinel error
}

func (a *alias) Error() string { return a.msg }
func (a *alias) Unwrap() error { return a.sentinel }

// Errorf returns an error that wraps sentinel with a formatted message, for
// servers: apierr.Errorf(apierr.ErrPartitionRange, "partition %d of %d", p, n).
func Errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// Label is the value of the "result" label of Strata's request metrics for
// err — one vocabulary across broker, proxy and coordinator: "OK" for nil,
// the strata.v1.Reason name of err's entry in the table ("NOT_OWNER",
// "STORAGE_UNAVAILABLE", "TIMEOUT", …), "CANCELED" for a cancelled
// request, "UNAVAILABLE" for a transport failure without a reason (a peer
// did not answer), and "INTERNAL" for anything else.
func Label(err error) string {
	if err == nil {
		return "OK"
	}
	if e, ok := lookup(err); ok {
		return e.reason.String()
	}
	if errors.Is(err, context.Canceled) {
		return "CANCELED"
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Canceled:
			return "CANCELED"
		case codes.DeadlineExceeded:
			return stratav1.Reason_TIMEOUT.String()
		case codes.Unavailable:
			return "UNAVAILABLE"
		}
	}
	return "INTERNAL"
}

// ToPart converts the error of one part of a multi-part call (such as
// ProduceMany) to the PartError the response carries: the code, reason
// and message of the status Status(err) would give. Nil for nil.
func ToPart(err error) *stratav1.PartError {
	if err == nil {
		return nil
	}
	st, _ := status.FromError(Status(err))
	pe := &stratav1.PartError{Code: int32(st.Code()), Message: st.Message()}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == Domain {
			pe.Reason = info.Reason
		}
	}
	return pe
}

// FromPart converts a PartError back to the error FromStatus gives for the
// same status, so that a part's error matches the sentinels like the
// error of a call of its own. Nil for nil.
func FromPart(pe *stratav1.PartError) error {
	if pe == nil {
		return nil
	}
	st := status.New(codes.Code(pe.GetCode()), pe.GetMessage())
	if pe.GetCode() == int32(codes.OK) {
		st = status.New(codes.Unknown, pe.GetMessage()) // an error without a code is still an error
	}
	if pe.GetReason() != "" {
		if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: pe.GetReason(), Domain: Domain}); err == nil {
			st = withInfo
		}
	}
	return FromStatus(st.Err())
}
