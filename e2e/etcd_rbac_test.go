package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TestEtcdRBAC runs the cluster's processes against an etcd with client
// certificate authentication, then turns on etcd's RBAC with
// meta.ApplyRBAC's per-role grants (one etcd certificate per role) while
// they run. The whole cluster keeps working under it — topics, produce,
// consume, a consumer group committing offsets, ACL changes, a drain,
// the coordinator's lifecycle passes — with no permission error in any
// log; and the brokers' etcd certificate, used directly, cannot rewrite
// ACLs or topics.
func TestEtcdRBAC(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]tlsgen.Files{}
	for _, cn := range []string{"root", "strata-coordinator", "strata-broker", "strata-proxy"} {
		if certs[cn], err = ca.WriteIssued(dir, cn, cn); err != nil {
			t.Fatal(err)
		}
	}
	etcdArgs := func(cn string) []string {
		return []string{"-etcd-cert", certs[cn].Cert, "-etcd-key", certs[cn].Key}
	}
	c := StartCluster(t, ClusterOptions{
		Brokers: 2,
		EtcdCA:  ca,
		// Lifecycle passes (retention, compaction, GC marks) run during
		// the test, under the coordinator's grants.
		CoordinatorArgs: append(etcdArgs("strata-coordinator"), "-lifecycle-interval", "1s", "-compact-min-age", "1s"),
		BrokerArgs:      etcdArgs("strata-broker"),
		ProxyArgs:       etcdArgs("strata-proxy"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	store := func(cn string) *meta.Store {
		tl, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: certs[cn].Cert, KeyFile: certs[cn].Key, CAFile: certs[cn].CA})
		if err != nil {
			t.Fatal(err)
		}
		s, err := meta.New(meta.Config{Endpoints: c.Etcd.Endpoints(), Prefix: "/e2e", TLS: tl.ClientConfig()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	root := store("root").Client()
	if _, err := root.RoleAdd(ctx, "root"); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		t.Fatal(err)
	}
	if _, err := root.UserAddWithOptions(ctx, "root", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if err := meta.ApplyRBAC(ctx, root, "/e2e", map[string]string{
		"strata-coordinator": meta.RBACRoleCoordinator, "strata-broker": meta.RBACRoleBroker, "strata-proxy": meta.RBACRoleProxy,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}

	admin := c.Client()
	const topic = "guarded"
	if _, err := admin.CreateTopic(ctx, topic, 4); err != nil {
		t.Fatalf("create topic under RBAC: %v", err)
	}
	produceAndConsume(ctx, t, admin, topic, 0, 300)
	if err := admin.AddACL(ctx, client.ACL{Principal: "app", ResourceType: "topic", ResourceName: topic, Operation: "consume"}); err != nil {
		t.Fatalf("proxy writes an ACL under RBAC: %v", err)
	}
	g, err := admin.NewGroupConsumer("billing", client.Subscribe(topic), client.GroupConsumerOpts(client.ConsumeStart(client.StartEarliest)))
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 300; {
		recs, err := g.Poll(ctx)
		if err != nil {
			t.Fatalf("group poll under RBAC: %v", err)
		}
		g.MarkRecords(recs...)
		got += len(recs)
	}
	if err := g.CommitSync(ctx); err != nil {
		t.Fatalf("group commit under RBAC: %v", err)
	}
	g.Close()
	if _, err := admin.DrainBroker(ctx, "broker-0"); err != nil {
		t.Fatalf("drain under RBAC: %v", err)
	}
	produceAndConsume(ctx, t, admin, topic, 300, 300)

	broker := store("strata-broker")
	err = broker.AddACL(ctx, meta.ACL{Principal: "mallory", ResourceType: meta.ResourceCluster, Name: meta.ClusterResourceName, Operation: meta.OpAll})
	if !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("the brokers' etcd certificate adds an ACL: %v, want etcd's permission denied", err)
	}
	if err := broker.DeleteTopic(ctx, topic); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("the brokers' etcd certificate deletes a topic: %v, want etcd's permission denied", err)
	}
	for _, p := range append(append(c.Coordinators, c.Brokers...), c.Proxy) {
		b, err := os.ReadFile(p.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte("permission denied")); i >= 0 {
			t.Errorf("%s logged a permission error: %s", p.LogPath(), line(b, i))
		}
	}
}

// line returns the line of b around index i.
func line(b []byte, i int) string {
	start := bytes.LastIndexByte(b[:i], '\n') + 1
	end := bytes.IndexByte(b[i:], '\n')
	if end < 0 {
		return string(b[start:])
	}
	return string(b[start : i+end])
}
