package dev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/pkg/meta"
)

// ErrDataDirInUse is returned by Start when another process holds the data
// directory. Without the check a second `strata dev` would block forever on
// the embedded etcd's database lock.
var ErrDataDirInUse = errors.New("dev: data dir in use")

// lockFile is the file in the data directory that a running cluster holds
// an exclusive lock on and writes its process id into.
const lockFile = "LOCK"

// lockDataDir takes a non-blocking exclusive lock on dir's lock file and
// records this process's id in it. The lock dies with the process, so a
// killed cluster never leaves a stale lock behind. unlock releases it.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dev: data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("dev: data dir lock %s: %w", path, err)
		}
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf("another strata dev (pid %d)", pid)
			}
		}
		return nil, fmt.Errorf("%w: %s is used by %s; stop it or choose another --data-dir", ErrDataDirInUse, dir, holder)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// clearStaleLeases revokes the leases of a previous `strata dev` on this
// data dir that was killed without releasing them: its coordinator's
// election key. Holding the data dir's lock proves that process is gone,
// so waiting for its lease to expire (several seconds in which admin calls
// and consumers get NOT_LEADER) buys nothing. The broker takes its own
// registration over itself (broker.Config.ReplaceRegistration).
func clearStaleLeases(ctx context.Context, store *meta.Store) error {
	resp, err := store.Client().Get(ctx, store.ElectionPrefix()+"/", clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("dev: read the election: %w", err)
	}
	for _, kv := range resp.Kvs {
		if kv.Lease == 0 {
			continue
		}
		if _, err := store.Client().Revoke(ctx, clientv3.LeaseID(kv.Lease)); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return fmt.Errorf("dev: revoke the killed coordinator's election lease: %w", err)
		}
	}
	return nil
}
