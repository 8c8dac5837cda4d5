package meta_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

func TestACLs(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, rev, err := s.ACLs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 16)
	watchDone := make(chan error, 1)
	go func() { watchDone <- s.WatchACLs(wctx, rev, func() { changed <- struct{}{} }) }()

	a := meta.ACL{Principal: "CN=a/b", ResourceType: meta.ResourceTopic, Name: "orders-*", Operation: meta.OpProduce}
	for range 2 { // idempotent
		if err := s.AddACL(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddACL(ctx, meta.ACL{Principal: "ops", ResourceType: meta.ResourceCluster, Name: "cluster", Operation: meta.OpAdmin}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("watch saw no change")
	}
	list, _, err := s.ACLs(ctx)
	if err != nil || len(list) != 2 || list[0].Principal != "CN=a/b" || list[0].Name != "orders-*" {
		t.Fatalf("ACLs = %v, %v", list, err)
	}
	if ok, err := s.RemoveACL(ctx, a); err != nil || !ok {
		t.Fatalf("remove = %v, %v", ok, err)
	}
	if ok, err := s.RemoveACL(ctx, a); err != nil || ok {
		t.Fatalf("second remove = %v, %v", ok, err)
	}
	for _, bad := range []meta.ACL{
		{Principal: "", ResourceType: "topic", Name: "x", Operation: "produce"},
		{Principal: "p", ResourceType: "table", Name: "x", Operation: "produce"},
		{Principal: "p", ResourceType: "topic", Name: "x", Operation: "write"},
		{Principal: "p", ResourceType: "cluster", Name: "x", Operation: "admin"},
		{Principal: "p", ResourceType: "topic", Name: "a*b", Operation: "produce"},
	} {
		if err := s.AddACL(ctx, bad); !errors.Is(err, meta.ErrInvalidACL) {
			t.Errorf("AddACL(%v) = %v, want ErrInvalidACL", bad, err)
		}
	}
	cancel()
	if err := <-watchDone; err != nil {
		t.Fatalf("watch ended with %v", err)
	}
}
