package charttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// wiringBucket is the bucket the wiring test renders the chart with.
const wiringBucket = "strata-wiring"

// TestWiring renders the chart with the bundled etcd and MinIO, then runs
// the coordinator, broker and proxy replicas as real processes with exactly
// the rendered command, args and environment — secrets resolved from the
// rendered Secret, $(VAR) references expanded as the kubelet does — with
// each Service host name mapped to the loopback address of the process that
// backs it and each container port to a free local port. The processes must
// pass the rendered readiness and liveness probes, and a topic created,
// produced to and fetched from through the proxy Service proves the wiring.
func TestWiring(t *testing.T) {
	t.Parallel()
	bin, err := testenv.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	minio := testenv.StartMinIO(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The chart's bucket Job does this in a cluster.
	if err := minio.CreateBucket(ctx, wiringBucket); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("/t-wiring-%d", time.Now().UnixNano())
	out := helm(t, nil, "template", "strata", chartDir(t), "--namespace", "mq",
		"--set", "s3.bucket="+wiringBucket,
		"--set", "s3.region="+testenv.MinIORegion,
		"--set", "s3.credentials.accessKey="+testenv.MinIOAccessKey,
		"--set", "s3.credentials.secretKey="+testenv.MinIOSecretKey,
		"--set", "etcd.prefix="+prefix,
		"--set", "proxy.replicaCount=1",
		"--set", "logLevel=debug")
	objs := decodeManifests(t, out)
	c := &cluster{t: t, objs: objs, bin: bin, logDir: t.TempDir(), ns: "mq", hosts: map[string]string{}}

	// The Services that stand for processes outside Strata.
	c.mapService(find[*corev1.Service](t, objs, "Service", "strata-etcd"), hostPort(t, etcd.Endpoint))
	c.mapService(find[*corev1.Service](t, objs, "Service", "strata-minio"), hostPort(t, minio.Endpoint))
	if job := find[*batchv1.Job](t, objs, "Job", "strata-minio-bucket-1"); !strings.Contains(strings.Join(job.Spec.Template.Spec.Containers[0].Args, " "), "strata/"+wiringBucket) {
		t.Errorf("bucket job does not create %s", wiringBucket)
	}

	// Start the replicas in dependency order, as readiness would gate them.
	var proxies []*pod
	for _, role := range []string{"coordinator", "broker", "proxy"} {
		d := find[*appsv1.Deployment](t, objs, "Deployment", "strata-"+role)
		for i := range int(*d.Spec.Replicas) {
			p := c.start(d, fmt.Sprintf("strata-%s-%d", role, i))
			if role == "proxy" {
				proxies = append(proxies, p)
			}
		}
	}
	// Clients reach the proxy through its Service.
	svc := find[*corev1.Service](t, objs, "Service", "strata-proxy")
	addr := fmt.Sprintf("127.0.0.1:%d", proxies[0].ports[namedPort(t, proxies[0].container, svc.Spec.Ports[0].TargetPort.StrVal)])
	produceAndFetch(t, addr)
	// Kafka clients bootstrap through the Service's Kafka port and then
	// follow the advertised address, which the chart sets to the Service.
	kafkaPort := svc.Spec.Ports[1]
	if kafkaPort.Name != "kafka" {
		t.Fatalf("proxy Service's second port is %q, want kafka", kafkaPort.Name)
	}
	produceKafka(t, fmt.Sprintf("127.0.0.1:%d", proxies[0].ports[namedPort(t, proxies[0].container, kafkaPort.TargetPort.StrVal)]))

	// The helm test pod's script, if the CLI exists yet.
	c.runHelmTestScript(addr)
}

// cluster runs the rendered pods as local processes.
type cluster struct {
	t      *testing.T
	objs   []object
	bin    string
	logDir string
	ns     string
	// hosts maps "service-host:port" (every form a pod may use) to a
	// loopback "127.0.0.1:port".
	hosts map[string]string
}

// pod is one started replica.
type pod struct {
	container corev1.Container
	// ports maps each container port to the local port it listens on.
	ports map[int32]int
}

// mapService maps every name of svc's ports to addr's host and the real
// process's port.
func (c *cluster) mapService(svc *corev1.Service, addr string) {
	for _, p := range svc.Spec.Ports {
		for _, host := range []string{
			svc.Name,
			svc.Name + "." + c.ns,
			svc.Name + "." + c.ns + ".svc",
			svc.Name + "." + c.ns + ".svc.cluster.local",
		} {
			c.hosts[net.JoinHostPort(host, strconv.Itoa(int(p.Port)))] = addr
		}
	}
}

// mapServiceToPod maps each port of svc, under every name of svc, to the
// local port of the pod's container port it targets.
func (c *cluster) mapServiceToPod(svc *corev1.Service, p *pod) {
	for _, sp := range svc.Spec.Ports {
		to := fmt.Sprintf("127.0.0.1:%d", p.ports[namedPort(c.t, p.container, sp.TargetPort.StrVal)])
		for _, host := range []string{svc.Name, svc.Name + "." + c.ns, svc.Name + "." + c.ns + ".svc", svc.Name + "." + c.ns + ".svc.cluster.local"} {
			c.hosts[net.JoinHostPort(host, strconv.Itoa(int(sp.Port)))] = to
		}
	}
}

func hostPort(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func namedPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port %q", c.Name, name)
	return 0
}

// start runs one replica of d under podName and waits for its readiness
// probe, then checks its liveness probe.
func (c *cluster) start(d *appsv1.Deployment, podName string) *pod {
	t := c.t
	t.Helper()
	spec := d.Spec.Template.Spec
	ctr := spec.Containers[0]
	p := &pod{container: ctr, ports: map[int32]int{}}
	for _, cp := range ctr.Ports {
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		p.ports[cp.ContainerPort] = port
	}
	if d.Name == "strata-proxy" {
		// The proxy advertises its own Service to Kafka clients.
		c.mapServiceToPod(find[*corev1.Service](t, c.objs, "Service", d.Name), p)
	}
	env := c.resolveEnv(podName, ctr)
	args := make([]string, 0, len(ctr.Command)+len(ctr.Args))
	for _, a := range append(append([]string(nil), ctr.Command[1:]...), ctr.Args...) {
		args = append(args, c.local(p, expand(a, env)))
	}
	var envList []string
	for _, e := range ctr.Env {
		envList = append(envList, e.Name+"="+c.local(p, env[e.Name]))
	}
	for _, kv := range envList {
		if strings.Contains(kv, "$(") {
			t.Fatalf("%s: unexpanded reference in %s", podName, kv)
		}
	}
	for cp := range p.ports {
		if !strings.Contains(strings.Join(append(envList, args...), " "), fmt.Sprintf("127.0.0.1:%d", p.ports[cp])) {
			t.Fatalf("%s: nothing listens on declared container port %d", podName, cp)
		}
	}
	grpcPort := p.ports[ctr.ReadinessProbe.GRPC.Port]
	if ctr.ReadinessProbe.GRPC.Port == 0 || grpcPort == 0 {
		t.Fatalf("%s: readiness probe port %d is not a container port", podName, ctr.ReadinessProbe.GRPC.Port)
	}
	proc, err := testenv.StartProcess(testenv.ProcessSpec{
		Name:   podName,
		Path:   filepath.Join(c.bin, filepath.Base(ctr.Command[0])),
		Args:   args,
		Env:    envList,
		LogDir: c.logDir,
		Ready:  testenv.GRPCServing(fmt.Sprintf("127.0.0.1:%d", grpcPort)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Stop)
	// Liveness: the rendered HTTP probe against the process.
	lp := ctr.LivenessProbe.HTTPGet
	live := fmt.Sprintf("http://127.0.0.1:%d%s", p.ports[namedPort(t, ctr, lp.Port.StrVal)], lp.Path)
	resp, err := http.Get(live)
	if err != nil {
		t.Fatalf("%s: liveness probe: %v", podName, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: liveness probe %s: %s", podName, live, resp.Status)
	}
	return p
}

// resolveEnv computes the container's environment as the kubelet does:
// values with $(VAR) references to earlier variables expanded, fieldRefs
// and secretKeyRefs resolved.
func (c *cluster) resolveEnv(podName string, ctr corev1.Container) map[string]string {
	t := c.t
	env := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expand(e.Value, env)
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "status.podIP":
				env[e.Name] = "127.0.0.1"
			case "metadata.name":
				env[e.Name] = podName
			case "metadata.namespace":
				env[e.Name] = c.ns
			default:
				t.Fatalf("%s: fieldRef %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s := find[*corev1.Secret](t, c.objs, "Secret", ref.Name)
			v, ok := s.Data[ref.Key]
			if !ok {
				t.Fatalf("%s: secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = string(v)
		default:
			t.Fatalf("%s: unsupported valueFrom", e.Name)
		}
	}
	return env
}

var varRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expand replaces $(VAR) with env's value as Kubernetes does: unknown
// references stay as they are, $$ escapes a dollar.
func expand(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// local rewrites addresses in s: the pod's own container ports to its local
// ports, then Service host names to the processes behind them. It fails
// the test if s still names a rendered Service afterwards.
func (c *cluster) local(p *pod, s string) string {
	for cp, port := range p.ports {
		to := fmt.Sprintf("127.0.0.1:%d", port)
		if s == fmt.Sprintf(":%d", cp) {
			s = to
		}
		for _, host := range []string{"0.0.0.0", "127.0.0.1"} {
			from := net.JoinHostPort(host, strconv.Itoa(int(cp)))
			s = regexp.MustCompile(`(^|[^0-9.])`+regexp.QuoteMeta(from)+`\b`).ReplaceAllString(s, "${1}"+to)
		}
	}
	for from, to := range c.hosts {
		s = strings.ReplaceAll(s, from, to)
	}
	for _, o := range c.objs {
		if o.Kind == "Service" && regexp.MustCompile(`\b`+regexp.QuoteMeta(o.Name)+`(\.|:|$)`).MatchString(s) {
			c.t.Fatalf("%q names Service %s, which the test does not map", s, o.Name)
		}
	}
	return s
}

// produceAndFetch creates a topic through the proxy at addr, produces a
// batch and fetches it back.
func produceAndFetch(t *testing.T, addr string) {
	t.Helper()
	conn, err := rpc.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := stratav1.NewStrataClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const topic = "wiring"
	if _, err := cl.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: topic, Partitions: 2}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	var recs []segment.Record
	for i := range 10 {
		recs = append(recs, segment.Record{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "record-%d", i)})
	}
	batch, err := segment.EncodeBatch(recs, segment.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Placement assigns the partitions shortly after creation: retry what
	// the error table calls retriable.
	var resp *stratav1.ProduceResponse
	for {
		resp, err = cl.Produce(ctx, &stratav1.ProduceRequest{Topic: topic, Partition: 1, Batches: batch})
		if err == nil || !apierr.Retriable(apierr.FromStatus(err)) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	if resp.BaseOffset != 0 || resp.LastOffset != 9 {
		t.Fatalf("produce offsets %d..%d, want 0..9", resp.BaseOffset, resp.LastOffset)
	}
	f, err := cl.Fetch(ctx, &stratav1.FetchRequest{Topic: topic, Partition: 1, Offset: 0, MaxBytes: 1 << 20, MaxWaitMs: 5000, MinBytes: 1})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if f.HighWatermark != 10 {
		t.Errorf("high watermark %d, want 10", f.HighWatermark)
	}
	headers, err := segment.SplitBatches(f.Batches)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	rest := f.Batches
	for _, h := range headers {
		n := h.Size()
		rs, err := segment.DecodeRecords(rest[:n])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
		rest = rest[n:]
	}
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("%d:record-%d", i, i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("fetched %v, want %v", got, want)
	}
}

// produceKafka produces through the proxy's Kafka listener at addr with
// franz-go and reads the records back.
func produceKafka(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("wiring"),
		kgo.ConsumeTopics("wiring"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "kafka-%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("kafka produce: %v", err)
	}
	got := 0
	for got < 20 { // 10 records from produceAndFetch on partition 1, 10 from here
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kafka consume: read %d of 20 records", got)
		}
		if err := fs.Err(); err != nil {
			t.Fatalf("kafka consume: %v", err)
		}
		got += fs.NumRecords()
	}
}

// runHelmTestScript runs the script of the chart's helm test pod against
// the proxy with a locally built strata CLI; it skips while cmd/strata does
// not exist.
func (c *cluster) runHelmTestScript(addr string) {
	t := c.t
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "strata", "main.go")); errors.Is(err, os.ErrNotExist) {
		t.Log("cmd/strata does not exist yet: helm test script not run")
		return
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "strata"), "./cmd/strata")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build strata CLI: %v\n%s", err, out)
	}
	out := helm(t, nil, "template", "strata", chartDir(t), "--show-only", "templates/tests/produce-consume.yaml")
	tp := find[*corev1.Pod](t, decodeManifests(t, out), "Pod", "strata-test")
	ctr := tp.Spec.Containers[0]
	if ctr.Command[0] != "/busybox/sh" {
		t.Fatalf("test pod runs %v", ctr.Command)
	}
	cmd := exec.Command("sh", append(ctr.Command[1:], ctr.Args...)...)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "STRATA_SERVER="+addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm test script: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("helm test script: %s", strings.TrimSpace(stdout.String()))
}
