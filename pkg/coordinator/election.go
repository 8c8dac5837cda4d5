package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// Leader is the value a coordinator campaigns with, and so the value of
// the leader key: {"id":"<coordinator id>","addr":"<host:port>"}. Proxies
// decode it to find the leader; docs/coordinator.md documents it.
type Leader struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// LeaderInfo returns the ID and advertised address of the current
// coordinator leader: the value of the key under store.ElectionPrefix with
// the lowest create revision, which is how etcd's election defines the
// leader. With no leader it returns an error matching apierr.ErrNotLeader
// (retriable).
func LeaderInfo(ctx context.Context, store *meta.Store) (id, addr string, err error) {
	resp, err := store.Client().Get(ctx, store.ElectionPrefix()+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", "", fmt.Errorf("coordinator: read leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", "", apierr.Errorf(apierr.ErrNotLeader, "no coordinator leader is elected")
	}
	var v Leader
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		return "", "", fmt.Errorf("coordinator: leader key %s: %w", resp.Kvs[0].Key, err)
	}
	return v.ID, v.Addr, nil
}

// electionLoop campaigns until ctx ends. Each round opens a new session,
// blocks in Campaign until elected, then leads until the session dies or ctx
// ends, and steps down before the next round.
func (s *Server) electionLoop(ctx context.Context, value Leader) {
	val, _ := json.Marshal(value) // two strings: cannot fail
	cli := s.cfg.Meta.Client()
	// Retries are capped at 2 s: an election round must not wait much
	// longer than the session TTL a standby waits out.
	retry := backoff.New(100*time.Millisecond, 2*time.Second)
	// stale is the lease of the last session if its revoke failed (etcd
	// was away): etcd keeps a lease across its own restart with a fresh
	// TTL, and this coordinator's old key, under it, would be first in
	// line, so every campaign, this one's too, would wait the TTL out.
	var stale clientv3.LeaseID
	for ctx.Err() == nil {
		session, err := concurrency.NewSession(cli,
			concurrency.WithTTL(s.cfg.sessionTTLSeconds()), concurrency.WithContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("election: cannot open etcd session", "err", err)
			}
			_ = retry.Wait(ctx)
			continue
		}
		if stale != 0 && s.revoke(stale) {
			stale = 0
		}
		if s.campaignAndLead(ctx, session, string(val)) {
			retry.Reset()
		} else {
			_ = retry.Wait(ctx)
		}
		session.Orphan() // stop keepalives; the revoke ends the lease
		if !s.revoke(session.Lease()) {
			stale = session.Lease()
		}
	}
}

// campaignAndLead waits to be elected on session and then leads until the
// session dies or ctx ends. It reports whether it was elected.
func (s *Server) campaignAndLead(ctx context.Context, session *concurrency.Session, value string) bool {
	// A campaign on a dead session could "win" with a key that no longer
	// exists, so the campaign ends with the session.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-session.Done():
			cancel()
		case <-cctx.Done():
		}
	}()
	el := concurrency.NewElection(session, s.cfg.Meta.ElectionPrefix())
	if err := el.Campaign(cctx, value); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("election: campaign ended", "err", err)
		}
		return false
	}
	// Campaign can return after the session's key vanished (lease expired
	// while waiting); lead only if our key still is the one that won.
	resp, err := s.cfg.Meta.Client().Get(cctx, el.Key())
	if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != el.Rev() {
		s.log.Warn("election: won with a lost key, campaigning again", "err", err)
		return false
	}

	lctx, stopLeading := context.WithCancel(ctx)
	s.metrics.elections.Inc()
	s.metrics.isLeader.Set(1)
	s.leading.Store(true)
	s.log.Info("elected coordinator leader", "key", el.Key())
	placed := make(chan struct{})
	go func() {
		defer close(placed)
		s.placementLoop(lctx)
	}()
	livenessDone := s.runLiveness(lctx)
	lifecycleDone := s.runLifecycle(lctx)
	groupsDone := s.runGroups(lctx)
	lagDone := s.runLag(lctx)

	select {
	case <-session.Done():
		s.log.Warn("election: etcd session lost, stepping down")
	case <-ctx.Done():
		s.log.Info("stepping down: shutting down")
	}
	// Stop acting as leader before anything else: admin calls answer
	// NOT_LEADER from here on, and placement's etcd calls are cancelled.
	s.leading.Store(false)
	s.metrics.isLeader.Set(0)
	stopLeading()
	<-placed
	<-livenessDone
	<-lifecycleDone
	<-groupsDone
	<-lagDone
	s.metrics.unassigned.Set(0)
	return true
}

// resignTimeout bounds the revoke of the election session at shutdown,
// and stopGrace the calls still in progress then: a server stops within
// 2 s of SIGTERM even with etcd gone, and a session etcd does not answer
// for expires after its TTL anyway.
const (
	resignTimeout = time.Second
	stopGrace     = 500 * time.Millisecond
)

// revoke ends a session's lease, which deletes its election key so a
// standby is elected at once rather than after the TTL. It reports whether
// the lease is gone: revoked now, or expired before.
func (s *Server) revoke(lease clientv3.LeaseID) bool {
	ctx, cancel := context.WithTimeout(context.Background(), resignTimeout)
	defer cancel()
	_, err := s.cfg.Meta.Client().Revoke(ctx, lease)
	return err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound)
}
