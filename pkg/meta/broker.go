package meta

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrBrokerExists is returned when a broker registers with an ID that a live
// registration holds.
var ErrBrokerExists = errors.New("meta: broker id already registered")

// BrokerInfo is what a live broker publishes about itself.
type BrokerInfo struct {
	V int `json:"v"`
	// ID is unique among live brokers.
	ID string `json:"id"`
	// Addr is the host:port other processes reach its gRPC server at.
	Addr string `json:"addr"`
	// Zone is the availability zone, if known.
	Zone string `json:"zone,omitempty"`
	// BytesInPerSec is the broker's recent produce rate, for placement.
	BytesInPerSec float64 `json:"bytes_in_per_sec"`
	// HotPartitions are the broker's busiest partitions by produce rate,
	// at most MaxHotPartitions, busiest first; the rest of BytesInPerSec
	// is spread over its other partitions.
	HotPartitions []PartitionLoad `json:"hot_partitions,omitempty"`
	// Draining is set while the broker hands its partitions away before it
	// exits; placement gives it nothing new.
	Draining bool `json:"draining,omitempty"`
	// StartedAt is when this broker process started.
	StartedAt time.Time `json:"started_at"`
	// LastStorageError is the broker's last object-storage error, for
	// strata cluster status; empty if it has had none.
	LastStorageError string `json:"last_storage_error,omitempty"`
	// LastStorageErrorAt is when LastStorageError happened.
	LastStorageErrorAt time.Time `json:"last_storage_error_at,omitzero"`
}

// MaxHotPartitions bounds BrokerInfo.HotPartitions, so that a broker's
// registration stays a small etcd value (about 60 bytes an entry) however
// many partitions it owns: placement only needs the few that stand out.
const MaxHotPartitions = 16

// PartitionLoad is one partition's recent produce rate on its broker.
type PartitionLoad struct {
	TopicID       string  `json:"topic_id"`
	Partition     int32   `json:"partition"`
	BytesInPerSec float64 `json:"bytes_in_per_sec"`
}

// Validate reports whether info can be registered.
func (b BrokerInfo) Validate() error {
	if b.ID == "" || len(b.ID) > 253 {
		return fmt.Errorf("meta: broker id %q must be 1–253 characters", b.ID)
	}
	for _, c := range b.ID {
		if c == '/' || c <= ' ' || c == 0x7f {
			return fmt.Errorf("meta: broker id %q has %q", b.ID, c)
		}
	}
	if b.Addr == "" {
		return errors.New("meta: broker address is empty")
	}
	return nil
}

// Registration is a broker's membership: a key under an etcd lease kept
// alive in the background. When the lease is lost the broker is no longer a
// member and must stop committing; Done says so.
type Registration struct {
	s     *Store
	key   string
	lease clientv3.LeaseID
	done  chan struct{}
	stop  context.CancelFunc

	mu   sync.Mutex // guards info
	info BrokerInfo
}

// RegisterBroker registers info under a new lease with the given TTL and
// keeps the lease alive until Close or until etcd stops answering for
// longer than the TTL. It fails with ErrBrokerExists while another live
// registration holds the same ID.
func (s *Store) RegisterBroker(ctx context.Context, info BrokerInfo, ttl time.Duration) (*Registration, error) {
	return s.registerBroker(ctx, info, ttl, false, 0)
}

// RegisterAgain is RegisterBroker for a broker whose registration r was
// lost (Done closed): its keepalives went unanswered for the TTL, as when
// etcd was down or frozen that long. etcd keeps a lease across its own
// restart and grants it a fresh TTL, so the ID may still be registered
// under r's lease, the caller's own; that registration is taken over at
// once (as ReplaceBroker does), not waited out. A registration under any
// other lease fails with ErrBrokerExists, as RegisterBroker does.
func (s *Store) RegisterAgain(ctx context.Context, r *Registration, ttl time.Duration) (*Registration, error) {
	return s.registerBroker(ctx, r.Info(), ttl, false, r.lease)
}

// ReplaceBroker is RegisterBroker for a caller that knows no other process
// runs with info.ID — `strata dev` holds its data directory's lock — so
// that a live registration of the ID is a killed predecessor's: it takes
// the registration over under a new lease at once and revokes the old
// lease, instead of failing until that lease expires. The caller must
// still fence the predecessor's partitions (bump their epochs) before it
// commits to them.
func (s *Store) ReplaceBroker(ctx context.Context, info BrokerInfo, ttl time.Duration) (*Registration, error) {
	return s.registerBroker(ctx, info, ttl, true, 0)
}

// registerBroker registers info under a new lease. A live registration of
// the ID is taken over if replace is set or if it is under the lease own
// (0: none); otherwise it fails with ErrBrokerExists.
func (s *Store) registerBroker(ctx context.Context, info BrokerInfo, ttl time.Duration, replace bool, own clientv3.LeaseID) (*Registration, error) {
	info.V = valueVersion
	if err := info.Validate(); err != nil {
		return nil, err
	}
	secs := int64(ttl / time.Second)
	if secs < 1 {
		return nil, fmt.Errorf("meta: lease ttl %v is under one second", ttl)
	}
	rctx, cancel := s.ctx(ctx)
	defer cancel()
	lease, err := s.cli.Grant(rctx, secs)
	if err != nil {
		return nil, fmt.Errorf("meta: grant lease: %w", err)
	}
	key := s.keys.broker(info.ID)
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, encode(info), clientv3.WithLease(lease.ID))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("%w: %s", ErrBrokerExists, info.ID)
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) > 0 && (replace || own != 0 && clientv3.LeaseID(kvs[0].Lease) == own) {
			err = s.takeOver(rctx, key, kvs[0].ModRevision, clientv3.LeaseID(kvs[0].Lease), info, lease.ID)
		}
	}
	if err != nil {
		_, _ = s.cli.Revoke(context.WithoutCancel(rctx), lease.ID)
		return nil, fmt.Errorf("meta: register broker %s: %w", info.ID, err)
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	ka, err := s.cli.KeepAlive(kctx, lease.ID)
	if err != nil {
		stop()
		return nil, fmt.Errorf("meta: keep lease alive: %w", err)
	}
	r := &Registration{s: s, key: key, lease: lease.ID, done: make(chan struct{}), stop: stop, info: info}
	go func() {
		defer close(r.done)
		for range ka { // drains until the lease expires or Close cancels
		}
	}()
	return r, nil
}

// takeOver moves the registration at key (still at revision rev, under
// the lease old) to the lease now, then revokes old.
func (s *Store) takeOver(ctx context.Context, key string, rev int64, old clientv3.LeaseID, info BrokerInfo, now clientv3.LeaseID) error {
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, encode(info), clientv3.WithLease(now))).
		Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s (changed while being replaced)", ErrBrokerExists, info.ID)
	}
	if _, err := s.cli.Revoke(ctx, old); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		s.log.Warn("revoking a replaced broker registration's lease failed; it expires on its own", "broker", info.ID, "err", err)
	}
	return nil
}

// LeaseID returns the registration's etcd lease.
func (r *Registration) LeaseID() clientv3.LeaseID { return r.lease }

// Done is closed once the lease is no longer kept alive: after Close, or
// when etcd lost the lease.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Info returns the currently published info.
func (r *Registration) Info() BrokerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info
}

// Update publishes new info (load, draining) under the same lease.
func (r *Registration) Update(ctx context.Context, info BrokerInfo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	info.V, info.ID = valueVersion, r.info.ID
	if err := info.Validate(); err != nil {
		return err
	}
	ctx, cancel := r.s.ctx(ctx)
	defer cancel()
	resp, err := r.s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(r.key), "=", r.lease)).
		Then(clientv3.OpPut(r.key, encode(info), clientv3.WithLease(r.lease))).
		Commit()
	if err != nil {
		return fmt.Errorf("meta: update broker %s: %w", info.ID, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: broker %s", ErrLeaseLost, info.ID)
	}
	r.info = info
	return nil
}

// Close revokes the lease, which removes the registration at once.
func (r *Registration) Close(ctx context.Context) error {
	r.stop()
	ctx, cancel := r.s.ctx(ctx)
	defer cancel()
	_, err := r.s.cli.Revoke(ctx, r.lease)
	<-r.done
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("meta: revoke lease: %w", err)
	}
	return nil
}

// ListBrokers returns the live brokers ordered by ID and the revision the
// list was read at.
func (s *Store) ListBrokers(ctx context.Context) ([]BrokerInfo, int64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.keys.brokers(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("meta: list brokers: %w", err)
	}
	out := make([]BrokerInfo, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var b BrokerInfo
		if err := decode(string(kv.Key), kv.Value, &b); err != nil {
			return nil, 0, err
		}
		out = append(out, b)
	}
	return out, resp.Header.Revision, nil
}

// EvictBroker ends the registration of broker id by revoking its lease,
// provided the registration is still the process that started at
// startedAt (a restarted process of the same ID is left alone). It is how
// the coordinator removes a broker it found dead before its lease runs
// out: the partitions of the evicted broker become orphans and are
// reassigned at epoch + 1. A process that is in fact alive learns from
// its keep-alive that the lease is gone, stops owning anything and
// registers again; the epoch fences whatever it still tries to commit.
// It reports whether a registration was evicted.
func (s *Store) EvictBroker(ctx context.Context, id string, startedAt time.Time) (bool, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.keys.broker(id)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("meta: evict broker %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return false, nil
	}
	var b BrokerInfo
	if err := decode(key, resp.Kvs[0].Value, &b); err != nil {
		return false, err
	}
	if !b.StartedAt.Equal(startedAt) || resp.Kvs[0].Lease == 0 {
		return false, nil
	}
	_, err = s.cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("meta: evict broker %s: revoke lease: %w", id, err)
	}
	return true, nil
}
