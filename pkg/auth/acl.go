package auth

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/meta"
)

// Resource is what an operation acts on.
type Resource struct {
	// Type is meta.ResourceTopic, meta.ResourceGroup or
	// meta.ResourceCluster.
	Type string
	// Name is the topic or group name, or meta.ClusterResourceName.
	Name string
}

// Topic, Group and Cluster name resources.
func Topic(name string) Resource { return Resource{meta.ResourceTopic, name} }

// Group names a consumer group resource.
func Group(name string) Resource { return Resource{meta.ResourceGroup, name} }

// TxnID names a Kafka transactional id resource.
func TxnID(name string) Resource { return Resource{meta.ResourceTxnID, name} }

// Cluster is the cluster resource.
func Cluster() Resource { return Resource{meta.ResourceCluster, meta.ClusterResourceName} }

func (r Resource) String() string { return r.Type + ":" + r.Name }

// acls is an in-memory copy of the ACLs in etcd, kept current by a watch.
type acls struct {
	store *meta.Store
	log   *slog.Logger

	mu     sync.RWMutex // guards list and loaded
	list   []meta.ACL
	loaded chan struct{} // closed after the first successful load
}

func newACLs(store *meta.Store, log *slog.Logger) *acls {
	return &acls{store: store, log: log, loaded: make(chan struct{})}
}

// refresh re-reads every ACL and returns the revision read at.
func (a *acls) refresh(ctx context.Context) (int64, error) {
	list, rev, err := a.store.ACLs(ctx)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	a.list = list
	select {
	case <-a.loaded:
	default:
		close(a.loaded)
	}
	a.mu.Unlock()
	return rev, nil
}

// run keeps the copy current until ctx ends: load, watch, reload on every
// change; after a failure it starts over with a bounded backoff.
func (a *acls) run(ctx context.Context) {
	// Capped at 5 s: ACL changes are rare, and the last copy keeps serving.
	retry := backoff.New(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		rev, err := a.refresh(ctx)
		if err == nil {
			retry.Reset()
			err = a.store.WatchACLs(ctx, rev, func() {
				if _, err := a.refresh(ctx); err != nil && ctx.Err() == nil {
					a.log.Warn("reloading acls failed", "err", err)
				}
			})
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		wait := retry.Next()
		a.log.Warn("acl watch failed; retrying", "err", err, "backoff", wait)
		if backoff.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// allowed reports whether some ACL lets principal perform op on r.
//
// Implications: "all" grants every operation on its resource; any
// operation on a resource grants describe on it; admin (or all) on the
// cluster grants everything everywhere.
func (a *acls) allowed(principal, op string, r Resource) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, g := range a.list {
		if g.Principal != principal && g.Principal != "*" {
			continue
		}
		if g.ResourceType == meta.ResourceCluster && (g.Operation == meta.OpAdmin || g.Operation == meta.OpAll) {
			return true
		}
		if g.ResourceType != r.Type || !nameMatches(g.Name, r.Name) {
			continue
		}
		if g.Operation == op || g.Operation == meta.OpAll || op == meta.OpDescribe {
			return true
		}
	}
	return false
}

// nameMatches matches an ACL name pattern: exact, "*", or "prefix*".
func nameMatches(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}
