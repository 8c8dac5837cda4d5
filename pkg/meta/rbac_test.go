package meta_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TestRBAC runs the store of each role against a real etcd with client
// certificate authentication and auth enabled, after ApplyRBAC: the
// coordinator creates and assigns, the broker registers and commits, the
// proxy changes ACLs; and a broker's certificate is refused when it tries
// to change ACLs or topics, a proxy's when it commits or creates topics.
func TestRBAC(t *testing.T) {
	ca, err := tlsgen.NewCA("etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.StartEtcdTLS(t, ca)
	dir := t.TempDir()
	const prefix = "/rbac"
	store := func(cn string) *meta.Store {
		f, err := ca.WriteIssued(dir, cn, cn)
		if err != nil {
			t.Fatal(err)
		}
		tl, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA})
		if err != nil {
			t.Fatal(err)
		}
		s, err := meta.New(meta.Config{Endpoints: e.Endpoints(), Prefix: prefix, TLS: tl.ClientConfig()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
	users := map[string]string{"coordinator-0": meta.RBACRoleCoordinator, "broker-0": meta.RBACRoleBroker, "proxy-0": meta.RBACRoleProxy}
	if err := meta.ApplyRBAC(ctx, root, prefix, users); err != nil {
		t.Fatal(err)
	}
	if err := meta.ApplyRBAC(ctx, root, prefix, users); err != nil {
		t.Fatalf("applying twice: %v", err)
	}
	if _, err := root.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	coord, broker, proxy := store("coordinator-0"), store("broker-0"), store("proxy-0")

	top, err := coord.CreateTopic(ctx, meta.Topic{Name: "orders", Partitions: 1, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		t.Fatalf("coordinator creates a topic: %v", err)
	}
	st, err := coord.GetPartition(ctx, top.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st, err = coord.AssignPartition(ctx, st, "broker-0"); err != nil {
		t.Fatalf("coordinator assigns: %v", err)
	}
	reg, err := broker.RegisterBroker(ctx, meta.BrokerInfo{ID: "broker-0", Addr: "127.0.0.1:1"}, 5*time.Second)
	if err != nil {
		t.Fatalf("broker registers: %v", err)
	}
	defer func() {
		if err := reg.Close(context.Background()); err != nil {
			t.Errorf("broker deregisters (lease revoke): %v", err)
		}
	}()
	commit := meta.Commit{Broker: "broker-0", Epoch: st.Epoch, Entry: meta.SegmentEntry{TopicID: top.ID, Partition: 0, ObjectKey: "o1", ObjectSize: 100, Len: 100, FirstOffset: 0, LastOffset: 9}}
	if errs := broker.CommitSegments(ctx, []meta.Commit{commit}); errs[0] != nil {
		t.Fatalf("broker commits: %v", errs[0])
	}
	if _, _, err := broker.ListTopics(ctx); err != nil {
		t.Fatalf("broker reads topics: %v", err)
	}
	acl := meta.ACL{Principal: "app", ResourceType: meta.ResourceTopic, Name: "orders", Operation: meta.OpProduce}
	if err := proxy.AddACL(ctx, acl); err != nil {
		t.Fatalf("proxy adds an ACL: %v", err)
	}
	if list, _, err := broker.ACLs(ctx); err != nil || len(list) != 1 {
		t.Fatalf("broker reads ACLs: %v, %v", list, err)
	}

	denied := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("%s: %v, want etcd's permission denied", what, err)
		}
	}
	denied("broker adds an ACL", broker.AddACL(ctx, meta.ACL{Principal: "mallory", ResourceType: meta.ResourceCluster, Name: meta.ClusterResourceName, Operation: meta.OpAll}))
	_, err = broker.RemoveACL(ctx, acl)
	denied("broker removes an ACL", err)
	_, err = broker.CreateTopic(ctx, meta.Topic{Name: "evil", Partitions: 1, RetentionMs: -1, RetentionBytes: -1})
	denied("broker creates a topic", err)
	denied("broker deletes a topic", broker.DeleteTopic(ctx, "orders"))
	_, err = proxy.CreateTopic(ctx, meta.Topic{Name: "evil", Partitions: 1, RetentionMs: -1, RetentionBytes: -1})
	denied("proxy creates a topic", err)
	commit.Entry.ObjectKey, commit.Entry.FirstOffset, commit.Entry.LastOffset = "o2", 10, 19
	denied("proxy commits", proxy.CommitSegments(ctx, []meta.Commit{commit})[0])
	if list, _, err := coord.ACLs(ctx); err != nil || len(list) != 1 {
		t.Fatalf("ACLs after the refusals: %v, %v; want only the proxy's", list, err)
	}
}

// TestRBACDocs keeps the etcdctl commands in docs/security.md in step with
// RBACGrants for the default prefix.
func TestRBACDocs(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	for role, grants := range meta.RBACGrants(meta.DefaultPrefix) {
		for _, g := range grants {
			perm := "read"
			if g.Write {
				perm = "readwrite"
			}
			line := fmt.Sprintf("etcdctl role grant-permission %s --prefix=true %s %s\n", role, perm, g.Prefix)
			if !strings.Contains(string(doc), line) {
				t.Errorf("docs/security.md lacks %q", line)
			}
		}
	}
}
