package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

// scrape reads the Prometheus text exposition at url and sums the samples
// of each series name over their labels (so a _count or _total is the total
// over every label value).
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name) {
			name = line[:i]
			rest = line[strings.LastIndexByte(line, '}')+2:]
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			t.Fatalf("%s: bad sample %q", url, line)
		}
		series[name] += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return series
}

// metricsAddr returns a free address for a server's -metrics-addr.
func metricsAddr(t testing.TB) string {
	t.Helper()
	a, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestMetricsUnderLoad runs a coordinator, a broker and a proxy that serve
// /metrics, produces and consumes 20,000 records, and checks that the
// series operators rely on (and the Grafana dashboard draws) exist on each
// server and moved under the load.
func TestMetricsUnderLoad(t *testing.T) {
	brokerM, proxyM, coordM := metricsAddr(t), metricsAddr(t), metricsAddr(t)
	c := StartCluster(t, ClusterOptions{Brokers: 1, BrokerArgs: []string{"-metrics-addr", brokerM}})
	// A second coordinator and proxy that serve metrics; the first
	// coordinator steps down so that the second one leads.
	coord := c.start("coordinator-metrics", "coordinator", []string{"-metrics-addr", coordM})
	c.Coordinators[0].Stop()
	c.start("proxy-metrics", "proxy", []string{"-metrics-addr", proxyM})
	urls := map[string]string{"broker": "http://" + brokerM + "/metrics", "proxy": "http://" + proxyM + "/metrics", "coordinator": "http://" + coordM + "/metrics"}
	for name, p := range map[string]*testenv.Process{"coordinator": coord, "broker": c.Brokers[0]} {
		if b, err := os.ReadFile(p.LogPath()); err != nil || !strings.Contains(string(b), "serving metrics") {
			t.Errorf("%s does not log its metrics address (%v)", name, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.Client()
	// The new coordinator leads once the old one's session is gone; admin
	// calls retry until then.
	if _, err := cl.CreateTopic(ctx, "metrics", 8); err != nil {
		t.Fatal(err)
	}
	before := map[string]map[string]float64{}
	for name, u := range urls {
		before[name] = scrape(t, u)
	}

	p, err := cl.NewProducer(client.Linger(2 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	recs := make([]*client.Record, n)
	for i := range recs {
		recs[i] = &client.Record{Topic: "metrics", Value: fmt.Appendf(nil, "record-%06d", i)}
	}
	if err := p.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := cl.NewConsumer()
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if err := cons.Assign("metrics"); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < n; {
		rs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got += len(rs)
	}

	after := map[string]map[string]float64{}
	for name, u := range urls {
		after[name] = scrape(t, u)
	}
	// Series that must have grown under the load, per server.
	grew := map[string][]string{
		"broker": {
			"strata_broker_produce_requests_total", "strata_broker_produce_records_total", "strata_broker_produce_bytes_total",
			"strata_broker_produce_duration_seconds_count", "strata_broker_flushes_total", "strata_broker_flush_bytes_sum",
			"strata_broker_flush_put_seconds_count", "strata_broker_flush_commit_seconds_count",
			"strata_meta_commit_txns_total", "strata_meta_commit_seconds_count", "strata_meta_commit_partitions_total",
			"strata_objstore_operations_total", "strata_objstore_operation_duration_seconds_count", "strata_objstore_written_bytes_total",
		},
		"proxy": {
			"strata_proxy_produce_requests_total", "strata_proxy_produce_bytes_total", "strata_proxy_produce_duration_seconds_count",
			"strata_proxy_fetch_requests_total", "strata_proxy_fetch_bytes_total", "strata_proxy_fetch_duration_seconds_count",
			"strata_cache_misses_total", "strata_objstore_operations_total", "strata_objstore_read_bytes_total",
		},
	}
	// Series that must exist (they count rare events or levels).
	exist := map[string][]string{
		"broker":      {"strata_broker_owned_partitions", "strata_broker_inflight_flushes", "strata_meta_commit_fenced_total", "process_resident_memory_bytes"},
		"proxy":       {"strata_proxy_produce_not_owner_total", "strata_proxy_produce_retries_total", "strata_cache_hits_total", "strata_cache_bytes"},
		"coordinator": {"strata_coordinator_is_leader", "strata_coordinator_assignments_total", "strata_coordinator_unassigned_partitions"},
	}
	for server, names := range grew {
		for _, name := range names {
			if after[server][name] <= before[server][name] {
				t.Errorf("%s: %s did not grow under load: %v → %v", server, name, before[server][name], after[server][name])
			}
		}
	}
	for server, names := range exist {
		for _, name := range names {
			if _, ok := after[server][name]; !ok {
				t.Errorf("%s: no series %s", server, name)
			}
		}
	}
	if v := after["broker"]["strata_broker_owned_partitions"]; v != 8 {
		t.Errorf("broker owns %v partitions, want 8", v)
	}
	if v := after["coordinator"]["strata_coordinator_is_leader"]; v != 1 {
		t.Errorf("coordinator is_leader = %v, want 1", v)
	}

	// Every strata_* series the dashboard queries is served by some server.
	all := map[string]bool{}
	for _, s := range after {
		for name := range s {
			all[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")] = true
		}
	}
	// Series the dashboard already draws whose counting another change
	// adds: the consumer-group coordinator counts rebalances.
	pending := map[string]bool{"strata_coordinator_group_rebalances_total": true}
	for _, name := range dashboardMetrics(t) {
		if !all[name] && !pending[name] {
			t.Errorf("the dashboard queries %s, which no server exports", name)
		}
	}
}

// dashboardMetrics returns the strata_* metric names in the Grafana
// dashboard's queries.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "charts", "strata", "dashboards", "strata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`strata_[a-z_]+`)
	seen := map[string]bool{}
	var names []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range re.FindAllString(tg.Expr, -1) {
				m = strings.TrimSuffix(m, "_bucket")
				if !seen[m] {
					seen[m] = true
					names = append(names, m)
				}
			}
		}
	}
	if len(names) < 20 {
		t.Fatalf("dashboard queries only %d strata metrics", len(names))
	}
	return names
}
