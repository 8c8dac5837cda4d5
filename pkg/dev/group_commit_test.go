package dev_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/client"
)

// TestGroupCommitAsyncHasAnOwner: GroupConsumer.Close waits for commits
// CommitAsync started (their goroutines have an owner), and a CommitAsync
// after Close reports ErrClosed instead of starting anything.
func TestGroupCommitAsyncHasAnOwner(t *testing.T) {
	ctx, cl := startWithClient(t)
	if _, err := cl.CreateTopic(ctx, "orders", 2); err != nil {
		t.Fatal(err)
	}
	g, err := cl.NewGroupConsumer("billing", client.Subscribe("orders"))
	if err != nil {
		t.Fatal(err)
	}

	release, finished := make(chan struct{}), make(chan struct{})
	g.CommitAsync(func(error) {
		<-release
		close(finished)
	})
	closed := make(chan error, 1)
	go func() { closed <- g.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a CommitAsync was still running")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return after the commit finished")
	}
	select {
	case <-finished:
	default:
		t.Fatal("Close returned before the CommitAsync callback finished")
	}

	got := make(chan error, 1)
	g.CommitAsync(func(err error) { got <- err })
	if err := <-got; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("CommitAsync after Close = %v, want ErrClosed", err)
	}
}

// startWithClient starts a dev cluster and returns an SDK client of it
// and a context of two minutes; both end with the test.
func startWithClient(t *testing.T) (context.Context, *client.Client) {
	t.Helper()
	c := start(t, t.TempDir())
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cl, err := client.New(c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return ctx, cl
}
