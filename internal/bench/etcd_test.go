package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
)

// TestEtcd runs the commit baseline against a real etcd: every commit
// passes the fencing compare (no errors but one etcd timeout, which ends
// that worker), the percentiles are ordered, the
// scratch keys are gone afterwards and the cluster's own keys untouched.
func TestEtcd(t *testing.T) {
	e := testenv.StartEtcd(t)
	ctx := testenv.Context(t)
	cluster := testenv.NewMeta(t, e.Endpoints())
	if _, err := cluster.CreateTopic(ctx, meta.Topic{Name: "keep", Partitions: 1, RetentionMs: -1, RetentionBytes: -1}); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	cfg := EtcdConfig{Concurrency: 2, Records: 1, Partitions: 3, Duration: 1200 * time.Millisecond, Warmup: 200 * time.Millisecond, Prefix: DefaultEtcdPrefix}
	s, err := Etcd(ctx, meta.Config{Endpoints: e.Endpoints(), Prefix: cluster.Prefix()}, nil, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	// A commit that etcd itself timed out (its raft apply starved on a
	// loaded machine) ends that worker's run, as its outcome is unknown;
	// it says nothing of fencing. Any other error is a failed compare.
	etcdTimeout := s.Errors == 1 && strings.Contains(s.FirstError, rpctypes.ErrTimeout.Error())
	if s.Kind != "etcd" || s.Ops == 0 || (s.Errors != 0 && !etcdTimeout) || s.PerSec <= 0 {
		t.Fatalf("summary: %+v", s)
	}
	l := s.Latency
	if l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
		t.Fatalf("latency not ordered: %+v", l)
	}
	if !strings.Contains(progress.String(), "commits/s") {
		t.Fatalf("progress lines: %q", progress.String())
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil || !strings.Contains(text.String(), "p99") {
		t.Fatalf("text: %q, %v", text.String(), err)
	}

	resp, err := cluster.Client().Get(ctx, cluster.Prefix()+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Key), DefaultEtcdPrefix) {
			t.Fatalf("scratch key left behind: %s", kv.Key)
		}
	}
	if _, err := cluster.GetTopic(ctx, "keep"); err != nil {
		t.Fatalf("cluster topic: %v", err)
	}

	// With PUTs: each commit names an object that was stored, the bytes
	// count, and the objects are deleted afterwards.
	store, err := objstore.NewFS(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Concurrency, cfg.PutBytes, cfg.ObjectPrefix = 1, 1024, DefaultS3Prefix
	s, err = Etcd(ctx, meta.Config{Endpoints: e.Endpoints(), Prefix: cluster.Prefix()}, store, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Ops == 0 || s.Errors != 0 || s.Bytes != s.Ops*1024 || s.Latency.P50 > s.Latency.P99 {
		t.Fatalf("summary with PUTs: %+v", s)
	}
	for info, err := range store.List(ctx, "") {
		t.Fatalf("object left behind: %v %v", info, err)
	}
	if _, err := Etcd(ctx, meta.Config{Endpoints: e.Endpoints()}, nil, cfg, nil); err == nil {
		t.Fatal("PUTs without a store: no error")
	}
}

func TestEtcdConfigValidate(t *testing.T) {
	ok := EtcdConfig{Concurrency: 1, Records: 1, Partitions: 1, Duration: time.Second, Prefix: DefaultEtcdPrefix}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*EtcdConfig){
		"no concurrency":  func(c *EtcdConfig) { c.Concurrency = 0 },
		"no records":      func(c *EtcdConfig) { c.Records = 0 },
		"no partitions":   func(c *EtcdConfig) { c.Partitions = 0 },
		"no duration":     func(c *EtcdConfig) { c.Duration = 0 },
		"negative warmup": func(c *EtcdConfig) { c.Warmup = -time.Second },
		"empty prefix":    func(c *EtcdConfig) { c.Prefix = "/" },
		"negative put":    func(c *EtcdConfig) { c.PutBytes = -1 },
		"no key prefix":   func(c *EtcdConfig) { c.PutBytes, c.ObjectPrefix = 1, "" },
	} {
		c := ok
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An unreachable etcd is an error, not a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Etcd(ctx, meta.Config{Endpoints: []string{addr}, RequestTimeout: time.Second, DialTimeout: time.Second}, nil, ok, nil)
	if err == nil {
		t.Fatal("no etcd: no error")
	}
}
