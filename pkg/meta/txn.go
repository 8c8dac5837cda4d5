package meta

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/pkg/apierr"
)

// Transactions of Kafka transactional producers (docs/transactions.md). The
// transaction coordinator (pkg/txn) keeps each transactional id's state in
// one key and changes it only with a compare on the key's ModRevision, so
// that every proxy may run the coordinator side by side:
//
//	<root>/txns/<transactionalID>        TxnState
//	<root>/txnpids/<producerID>          TxnPID
//
// The second key maps a producer id back to its transactional id: it keeps
// producer ids unique among transactional ids, and lets a check that only
// has the producer id of a batch find the transaction.

// Errors of transactional ids and their state.
var (
	ErrInvalidTxnID = apierr.Alias("meta: invalid transactional id", apierr.ErrInvalidRequest)
	ErrTxnTooLarge  = apierr.Alias("meta: transaction state too large", apierr.ErrInvalidRequest)
)

// Limits of transactional ids and their state.
const (
	// MaxTxnIDLen bounds a transactional id, in bytes.
	MaxTxnIDLen = 1024
	// MaxTxnStateBytes bounds a TxnState's encoding: with its producer id
	// keys it must fit in one etcd request, 1.5 MiB by default
	// (--max-request-bytes).
	MaxTxnStateBytes = 1 << 20
)

// ValidateTxnID reports whether id can be a transactional id: 1–1024
// bytes of valid UTF-8.
func ValidateTxnID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidTxnID)
	case len(id) > MaxTxnIDLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidTxnID, len(id), MaxTxnIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidTxnID, id)
	}
	return nil
}

// TxnStatus is the state of a transactional id's current transaction, as
// Kafka's transaction coordinator names them.
type TxnStatus string

// Transaction states. A transaction goes empty (or complete_*) → ongoing
// (partitions or groups added) → prepare_* (the outcome is decided) →
// complete_* (every marker written, offsets committed).
const (
	TxnEmpty          TxnStatus = "empty"
	TxnOngoing        TxnStatus = "ongoing"
	TxnPrepareCommit  TxnStatus = "prepare_commit"
	TxnPrepareAbort   TxnStatus = "prepare_abort"
	TxnCompleteCommit TxnStatus = "complete_commit"
	TxnCompleteAbort  TxnStatus = "complete_abort"
)

// Valid reports whether s is one of the transaction states.
func (s TxnStatus) Valid() bool {
	switch s {
	case TxnEmpty, TxnOngoing, TxnPrepareCommit, TxnPrepareAbort, TxnCompleteCommit, TxnCompleteAbort:
		return true
	}
	return false
}

// Prepared reports whether the outcome is decided and not yet carried out.
func (s TxnStatus) Prepared() bool { return s == TxnPrepareCommit || s == TxnPrepareAbort }

// Completed reports whether the last transaction is over.
func (s TxnStatus) Completed() bool { return s == TxnCompleteCommit || s == TxnCompleteAbort }

// TxnPartition is one partition of a transaction.
type TxnPartition struct {
	Topic     string `json:"topic"`
	TopicID   string `json:"topic_id"`
	Partition int32  `json:"partition"`
}

// TxnOffset is an offset a transaction commits for a consumer group when
// it commits.
type TxnOffset struct {
	Group       string `json:"group"`
	TopicID     string `json:"topic_id"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata,omitempty"`
}

// TxnState is a transactional id's producer and its current transaction.
type TxnState struct {
	V int `json:"v"`
	// ID is the transactional id (from the key).
	ID         string `json:"-"`
	ProducerID int64  `json:"producer_id"`
	Epoch      int16  `json:"epoch"`
	// Recoverable says the producer at Epoch-1 of the same ProducerID may
	// still take the id over with InitProducer (KIP-360, KIP-588): the
	// epoch was bumped over it by the coordinator (a transaction timeout)
	// or at its own request, never by another instance of the producer.
	Recoverable bool      `json:"recoverable,omitempty"`
	Status      TxnStatus `json:"status"`
	TimeoutMs   int32     `json:"timeout_ms"`
	// Principal created the id; no other principal may use it.
	Principal  string         `json:"principal"`
	Partitions []TxnPartition `json:"partitions,omitempty"`
	Groups     []string       `json:"groups,omitempty"`
	Offsets    []TxnOffset    `json:"offsets,omitempty"`
	// StartedMs is when the transaction became ongoing (Unix ms).
	StartedMs int64 `json:"started_ms,omitempty"`
	// UpdatedMs is when the state was last written (Unix ms).
	UpdatedMs int64 `json:"updated_ms"`
	// Revision is the key's ModRevision when read; 0 when absent.
	Revision int64 `json:"-"`
}

// TxnPID is the value of a producer id's key: its transactional id.
type TxnPID struct {
	V  int    `json:"v"`
	ID string `json:"id"`
}

// checkTxn validates st before a write and returns its encoding.
func checkTxn(st TxnState) (string, error) {
	if err := ValidateTxnID(st.ID); err != nil {
		return "", err
	}
	if !st.Status.Valid() || st.ProducerID < 0 || st.Epoch < 0 {
		return "", fmt.Errorf("meta: invalid transaction state of %q: status %q, producer %d, epoch %d",
			st.ID, st.Status, st.ProducerID, st.Epoch)
	}
	st.V = valueVersion
	val := encode(st)
	if len(val) > MaxTxnStateBytes {
		return "", fmt.Errorf("%w: %q is %d bytes, at most %d", ErrTxnTooLarge, st.ID, len(val), MaxTxnStateBytes)
	}
	return val, nil
}

// GetTxn reads a transactional id's state; Revision is 0 when it has none.
func (s *Store) GetTxn(ctx context.Context, id string) (TxnState, error) {
	if err := ValidateTxnID(id); err != nil {
		return TxnState{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.keys.txn(id))
	if err != nil {
		return TxnState{}, fmt.Errorf("meta: read transaction %q: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return TxnState{ID: id}, nil
	}
	return s.decodeTxn(resp.Kvs[0].Key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

func (s *Store) decodeTxn(key, value []byte, rev int64) (TxnState, error) {
	st := TxnState{ID: strings.TrimPrefix(string(key), s.keys.txns())}
	if value == nil {
		return st, nil
	}
	if err := decode(string(key), value, &st); err != nil {
		return TxnState{}, err
	}
	st.Revision = rev
	return st, nil
}

// txnListPage is how many states ListTxns reads per request: a state may
// be up to MaxTxnStateBytes, and one response holds a page.
const txnListPage = 64

// ListTxns returns every transactional id's state, in id order, read at
// one revision, which it returns for WatchTxns.
func (s *Store) ListTxns(ctx context.Context) ([]TxnState, int64, error) {
	var out []TxnState
	rev, err := s.scanPrefix(ctx, s.keys.txns(), txnListPage, "list transactions", func(kv *mvccpb.KeyValue) error {
		st, err := s.decodeTxn(kv.Key, kv.Value, kv.ModRevision)
		out = append(out, st)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return out, rev, nil
}

// CreateTxn stores the first state of a transactional id, and its producer
// id's key, if neither exists; ErrConflict otherwise (the id was created
// meanwhile, or the producer id is taken). It returns st with its
// Revision.
func (s *Store) CreateTxn(ctx context.Context, st TxnState) (TxnState, error) {
	val, err := checkTxn(st)
	if err != nil {
		return TxnState{}, err
	}
	key, pidKey := s.keys.txn(st.ID), s.keys.txnPID(st.ProducerID)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(pidKey), "=", 0)).
		Then(clientv3.OpPut(key, val), clientv3.OpPut(pidKey, encode(TxnPID{V: valueVersion, ID: st.ID}))).
		Commit()
	if err != nil {
		return TxnState{}, fmt.Errorf("meta: create transaction %q: %w", st.ID, err)
	}
	if !resp.Succeeded {
		return TxnState{}, fmt.Errorf("%w: transactional id %q or producer id %d exists", ErrConflict, st.ID, st.ProducerID)
	}
	st.V, st.Revision = valueVersion, resp.Header.Revision
	return st, nil
}

// PutTxn writes a transactional id's state if its key is still at
// st.Revision, and returns st with its new Revision; ErrConflict if the
// key moved on. When st.ProducerID differs from the stored one, the same
// transaction moves the producer id's key, and fails with ErrConflict if
// the new producer id is taken (the key then is unchanged: a caller tells
// the two apart by reading it again).
func (s *Store) PutTxn(ctx context.Context, st TxnState) (TxnState, error) {
	val, err := checkTxn(st)
	if err != nil {
		return TxnState{}, err
	}
	if st.Revision <= 0 {
		return TxnState{}, fmt.Errorf("meta: put transaction %q without a revision; create it first", st.ID)
	}
	key, pidKey := s.keys.txn(st.ID), s.keys.txnPID(st.ProducerID)
	pidVal := encode(TxnPID{V: valueVersion, ID: st.ID})
	sameRev := clientv3.Compare(clientv3.ModRevision(key), "=", st.Revision)
	// Usually the producer id stays: then its key holds this id already.
	rctx, cancel := s.ctx(ctx)
	resp, err := s.cli.Txn(rctx).
		If(sameRev, clientv3.Compare(clientv3.Value(pidKey), "=", pidVal)).
		Then(clientv3.OpPut(key, val)).
		Else(clientv3.OpGet(key)).
		Commit()
	cancel()
	if err != nil {
		return TxnState{}, fmt.Errorf("meta: write transaction %q: %w", st.ID, err)
	}
	if resp.Succeeded {
		st.V, st.Revision = valueVersion, resp.Header.Revision
		return st, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || kvs[0].ModRevision != st.Revision {
		return TxnState{}, fmt.Errorf("%w: transaction %q changed", ErrConflict, st.ID)
	}
	old, err := s.decodeTxn(kvs[0].Key, kvs[0].Value, kvs[0].ModRevision)
	if err != nil {
		return TxnState{}, err
	}
	return s.moveTxnPID(ctx, st, val, old.ProducerID)
}

// moveTxnPID writes st (encoded as val), whose producer id replaces
// oldPID: it deletes oldPID's key and creates st.ProducerID's.
func (s *Store) moveTxnPID(ctx context.Context, st TxnState, val string, oldPID int64) (TxnState, error) {
	key, pidKey := s.keys.txn(st.ID), s.keys.txnPID(st.ProducerID)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", st.Revision),
			clientv3.Compare(clientv3.CreateRevision(pidKey), "=", 0)).
		Then(clientv3.OpPut(key, val),
			clientv3.OpDelete(s.keys.txnPID(oldPID)),
			clientv3.OpPut(pidKey, encode(TxnPID{V: valueVersion, ID: st.ID}))).
		Commit()
	if err != nil {
		return TxnState{}, fmt.Errorf("meta: write transaction %q: %w", st.ID, err)
	}
	if !resp.Succeeded {
		return TxnState{}, fmt.Errorf("%w: transaction %q changed or producer id %d is taken", ErrConflict, st.ID, st.ProducerID)
	}
	st.V, st.Revision = valueVersion, resp.Header.Revision
	return st, nil
}

// DeleteTxn removes a transactional id's state and its producer id's key
// if the state is still at st.Revision; ErrConflict if it moved on (the
// id was used meanwhile).
func (s *Store) DeleteTxn(ctx context.Context, st TxnState) error {
	key := s.keys.txn(st.ID)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", st.Revision)).
		Then(clientv3.OpDelete(key), clientv3.OpDelete(s.keys.txnPID(st.ProducerID))).
		Commit()
	if err != nil {
		return fmt.Errorf("meta: delete transaction %q: %w", st.ID, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: transaction %q changed", ErrConflict, st.ID)
	}
	return nil
}

// TxnIDOf returns the transactional id producer id pid belongs to;
// ErrNotFound if none.
func (s *Store) TxnIDOf(ctx context.Context, pid int64) (string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.keys.txnPID(pid)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("meta: read producer id %d: %w", pid, err)
	}
	if len(resp.Kvs) == 0 {
		return "", fmt.Errorf("%w: producer id %d has no transactional id", ErrNotFound, pid)
	}
	var v TxnPID
	if err := decode(key, resp.Kvs[0].Value, &v); err != nil {
		return "", err
	}
	if v.ID == "" {
		return "", fmt.Errorf("meta: producer id %d maps to an empty transactional id", pid)
	}
	return v.ID, nil
}

// WatchTxns streams changes of transactional ids' states after revision
// rev (from ListTxns). Event.Revision is the key's new ModRevision
// (Value.Revision stays 0); on delete, Value holds only ID.
func (s *Store) WatchTxns(ctx context.Context, rev int64) <-chan Event[TxnState] {
	return watch(ctx, s, s.keys.txns(), rev, func(key, value []byte) (TxnState, error) {
		return s.decodeTxn(key, value, 0)
	})
}
