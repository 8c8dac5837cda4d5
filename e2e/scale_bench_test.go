package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

// BenchmarkPartitions runs the same light produce load (1 KiB records at
// a fixed rate, keyed, so every partition gets some) over 10 and over
// 10,000 partitions of one topic on four real brokers, and reports what
// grows with the partition count: the time to place a new topic's
// partitions, etcd keys per partition, etcd requests per second, PUTs
// per second per broker, the brokers' and proxy's resident memory, and
// the time until every partition is served again after a cold start of
// the brokers and the coordinator.
//
//	go test ./e2e -run '^$' -bench 'Partitions$' -benchtime 1x
func BenchmarkPartitions(b *testing.B) { scaleSizes(b) }

// BenchmarkPartitionsLinger is BenchmarkPartitions with the brokers set
// for a store that bills PUTs (-linger-when-idle -flush-interval 50ms): a
// flush every 50 ms at most, however fast the previous one committed. By
// default a flush starts at once when none is in flight, so the PUT rate
// follows how long PUT and commit take; with a linger it follows the
// load and the interval only, which is what bounds a bill.
//
//	go test ./e2e -run '^$' -bench 'PartitionsLinger$' -benchtime 1x
func BenchmarkPartitionsLinger(b *testing.B) {
	scaleSizes(b, "-linger-when-idle", "-flush-interval", "50ms")
}

// scaleSizes runs scaleRun at 10 and at 10,000 partitions.
func scaleSizes(b *testing.B, brokerArgs ...string) {
	for _, n := range []int32{10, 10_000} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			for range b.N {
				scaleRun(b, n, brokerArgs)
			}
		})
	}
}

// Load of a scaleRun.
const (
	scaleRate     = 2000 // records/s
	scaleDuration = 15 * time.Second
	scaleBrokers  = 4
	// scaleIdle is the idle window measured before the load: three
	// lifecycle passes.
	scaleIdle = 30 * time.Second
)

func scaleRun(b *testing.B, partitions int32, brokerArgs []string) {
	c := StartCluster(b, ClusterOptions{Brokers: scaleBrokers, BrokerMetrics: true, BrokerArgs: brokerArgs})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl := c.Client(client.AdminAttempts(20))
	start := time.Now()
	if _, err := cl.CreateTopic(ctx, "scale", partitions); err != nil {
		b.Fatal(err)
	}
	for {
		st, err := cl.ClusterStatus(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if assigned(st) == int(partitions) {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("partitions not placed: %v", ctx.Err())
		}
		time.Sleep(20 * time.Millisecond) // polling the status, bounded by ctx
	}
	b.ReportMetric(time.Since(start).Seconds(), "place-s")
	// Idle, the cluster's work should not grow with its partitions: no
	// records, only the background (lifecycle passes every 10 s, load
	// reports, rebalancing).
	idleBefore, idleCPU := etcdRequests(b, c.Etcd.Endpoint), serverCPU(b, c)
	time.Sleep(scaleIdle) // measuring a window of idle time, not waiting for a condition
	b.ReportMetric((etcdRequests(b, c.Etcd.Endpoint)-idleBefore)/scaleIdle.Seconds(), "idle-etcd-req/s")
	idleAfter := serverCPU(b, c)
	for _, name := range []string{"coordinator", "brokers", "proxy"} {
		b.ReportMetric(float64(idleAfter[name]-idleCPU[name])*10/scaleIdle.Seconds(), "idle-"+name+"-cpu-ms/s")
	}
	keys := etcdKeys(b, ctx, c.Etcd.Endpoint)
	b.ReportMetric(float64(keys)/float64(partitions), "etcd-keys/partition")

	before, stagesBefore := etcdRequests(b, c.Etcd.Endpoint), brokerStages(b, c)
	cpuBefore := serverCPU(b, c)
	produceAtRate(b, ctx, cl, "scale", scaleRate, scaleDuration)
	after := etcdRequests(b, c.Etcd.Endpoint)
	b.ReportMetric((after-before)/scaleDuration.Seconds(), "etcd-req/s")
	reportStages(b, stagesBefore, brokerStages(b, c))
	for name, cpu := range serverCPU(b, c) {
		b.ReportMetric(float64(cpu-cpuBefore[name])*10/scaleDuration.Seconds(), name+"-cpu-ms/s")
	}
	var brokerRSS float64
	for _, p := range c.Brokers {
		brokerRSS = max(brokerRSS, rssMiB(b, p.Pid()))
	}
	b.ReportMetric(brokerRSS, "broker-MiB")
	b.ReportMetric(rssMiB(b, c.Proxy.Pid()), "proxy-MiB")
	b.ReportMetric(coldStart(b, ctx, c, cl, int(partitions)).Seconds(), "cold-start-s")
}

// brokerStages sums the brokers' produce and flush series.
func brokerStages(b *testing.B, c *Cluster) map[string]float64 {
	sum := map[string]float64{}
	for _, m := range c.BrokerMetrics {
		for k, v := range scrape(b, "http://"+m+"/metrics") {
			if strings.HasPrefix(k, "strata_broker_") {
				sum[k] += v
			}
		}
	}
	return sum
}

// reportStages reports, from the brokers' series before and after the
// load, the produce requests each broker answered and the PUTs it made
// per second, and the mean time of a produce, a flush's PUT and a commit.
func reportStages(b *testing.B, before, after map[string]float64) {
	delta := func(name string) float64 { return after[name] - before[name] }
	b.ReportMetric(delta("strata_broker_produce_requests_total")/scaleBrokers/scaleDuration.Seconds(), "requests/s/broker")
	// A flush is one PUT; the lifecycle's compaction PUTs are not the
	// brokers'.
	b.ReportMetric(delta("strata_broker_flushes_total")/scaleBrokers/scaleDuration.Seconds(), "puts/s/broker")
	for _, s := range []struct{ series, unit string }{
		{"strata_broker_produce_duration_seconds", "produce-ms"},
		{"strata_broker_flush_put_seconds", "put-ms"},
		{"strata_broker_flush_commit_seconds", "commit-ms"},
	} {
		if n := delta(s.series + "_count"); n > 0 {
			b.ReportMetric(1000*delta(s.series+"_sum")/n, s.unit)
		}
	}
}

// coldStart kills (SIGKILL) every broker and the coordinator, starts them
// again, and returns the time from the first start until every partition
// is served again: owned by a live broker at a higher epoch than before
// the kill, so the killed processes are fenced off.
func coldStart(b *testing.B, ctx context.Context, c *Cluster, cl *client.Client, partitions int) time.Duration {
	type key struct {
		topic     string
		partition int32
	}
	epochs := func() (map[key]int64, error) {
		st, err := cl.ClusterStatus(ctx)
		if err != nil {
			return nil, err
		}
		m := map[key]int64{}
		for _, br := range st.Brokers {
			for _, p := range br.Partitions {
				m[key{p.Topic, p.Partition}] = p.Epoch
			}
		}
		return m, nil
	}
	before, err := epochs()
	if err != nil {
		b.Fatal(err)
	}
	servers := append(append([]*testenv.Process(nil), c.Coordinators...), c.Brokers...)
	for _, p := range servers {
		p.Kill()
	}
	start := time.Now()
	for _, p := range servers {
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
	}
	for {
		now, err := epochs()
		served := 0
		for k, e := range now {
			if e > before[k] {
				served++
			}
		}
		if err == nil && served == partitions {
			return time.Since(start)
		}
		if ctx.Err() != nil {
			b.Fatalf("after a cold start %d of %d partitions served (last error %v)", served, partitions, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the status, bounded by ctx
	}
}

// assigned counts the partitions the status shows on live brokers.
func assigned(st *client.ClusterStatus) int {
	n := 0
	for _, br := range st.Brokers {
		n += len(br.Partitions)
	}
	return n
}

// produceAtRate produces 1 KiB keyed records at rate per second for d,
// waits for every acknowledgement and reports the rate reached
// (records/s). It paces by count, not by ticks: every 10 ms it produces
// what is due since the start, so a tick the loop missed on a busy
// machine is made up at the next and both sizes get the same load.
func produceAtRate(b *testing.B, ctx context.Context, cl *client.Client, topic string, rate int, d time.Duration) {
	p, err := cl.NewProducer()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	value := make([]byte, 1024)
	var (
		mu     sync.Mutex
		failed error
	)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	i := 0
	for elapsed := time.Duration(0); elapsed < d; elapsed = time.Since(start) {
		<-tick.C
		due := int(min(time.Since(start), d).Seconds() * float64(rate))
		for ; i < due; i++ {
			p.Produce(ctx, &client.Record{Topic: topic, Partition: -1, Key: fmt.Appendf(nil, "k%d", i), Value: value}, func(_ *client.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil && failed == nil {
					failed = err
				}
			})
		}
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(i)/d.Seconds(), "records/s")
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		b.Fatal(failed)
	}
}

// etcdKeys counts every key the cluster keeps in etcd.
func etcdKeys(b *testing.B, ctx context.Context, endpoint string) int64 {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "/e2e", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		b.Fatal(err)
	}
	return resp.Count
}

// etcdRequests sums etcd's counters of served reads, puts, deletes and
// transactions.
func etcdRequests(b *testing.B, endpoint string) float64 {
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for _, name := range []string{"etcd_mvcc_range_total", "etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_txn_total"} {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				sum += f
			}
		}
	}
	return sum
}

// serverCPU returns the CPU time (user and system, in clock ticks of
// 10 ms) of the proxy, of the coordinator and of all brokers together,
// of etcd and MinIO, and of this process (the SDK client making the load).
func serverCPU(b *testing.B, c *Cluster) map[string]int64 {
	ticks := func(pid int) int64 {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Fatal(err)
		}
		// The fields after the command's closing parenthesis; utime and
		// stime are the 14th and 15th of the whole line.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		return u + s
	}
	// client is this test process: the SDK producer that makes the load.
	out := map[string]int64{"proxy": ticks(c.Proxy.Pid()), "coordinator": ticks(c.Coordinators[0].Pid()),
		"etcd": ticks(c.Etcd.Pid()), "minio": ticks(c.MinIO.Pid()), "client": ticks(os.Getpid())}
	for _, p := range c.Brokers {
		out["brokers"] += ticks(p.Pid())
	}
	return out
}

// rssMiB reads a process's resident memory.
func rssMiB(b testing.TB, pid int) float64 { return procStatusMiB(b, pid, "VmRSS") }

// procStatusMiB reads a memory field of a process's /proc status (VmRSS,
// or VmHWM for the peak) in MiB.
func procStatusMiB(b testing.TB, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no %s for pid %d", field, pid)
	return 0
}
