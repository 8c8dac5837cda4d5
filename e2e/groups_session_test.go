package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/client"
)

// TestGroupMemberFollowsCoordinatorSession runs a coordinator whose group
// session timeout is 30 s and freezes it (SIGSTOP), so that a member's
// heartbeats fail while the group still counts it as the owner of its
// partitions. The member must keep them for about the coordinator's 30 s
// (not a client-side default), and drop them before the coordinator
// could give them to another member.
func TestGroupMemberFollowsCoordinatorSession(t *testing.T) {
	const session = 30 * time.Second
	c := StartCluster(t, ClusterOptions{Brokers: 1, CoordinatorArgs: []string{"-group-session-timeout", session.String()}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := c.Client()
	if _, err := cl.CreateTopic(ctx, "sessions", 4); err != nil {
		t.Fatal(err)
	}
	revoked := make(chan time.Time, 1)
	g, err := cl.NewGroupConsumer("slow-session", client.Subscribe("sessions"),
		client.OnRevoked(func(_ context.Context, tps []client.TopicPartition) {
			select {
			case revoked <- time.Now():
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Close() }()
	for i := 0; len(g.Assignment()) != 4; i++ {
		if i == 600 {
			t.Fatalf("the member never got the 4 partitions: %v", g.Assignment())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Coordinators[0].Pause(); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	defer func() { _ = c.Coordinators[0].Resume() }()
	var kept time.Duration
	select {
	case at := <-revoked:
		kept = at.Sub(frozen)
	case <-time.After(2 * session):
		t.Fatal("the member never gave up its partitions")
	}
	// The last heartbeat before the freeze was sent at most one heartbeat
	// interval (1 s) earlier, and the member gives up a tenth of the
	// session (at most 1 s) before the group's earliest removal.
	t.Logf("kept its partitions %v after the coordinator froze (session %v)", kept.Round(time.Millisecond), session)
	if floor := session - 2*time.Second - 2*time.Second; kept < floor {
		t.Errorf("gave its partitions up after %v, want at least %v: it does not follow the coordinator's session timeout", kept, floor)
	}
	if kept >= session {
		t.Errorf("kept its partitions %v, past the %v session in which the group may hand them on", kept, session)
	}
	// OnRevoked runs before the member forgets the partitions; it forgets
	// them as soon as the callback returns.
	waitFor(t, "the member owns nothing after giving up", func() bool { return len(g.Assignment()) == 0 })
}
