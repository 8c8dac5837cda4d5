package charttest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// scenarios returns the values files under ci/, plus "" for the defaults.
func scenarios(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario files under ci/")
	}
	return append([]string{""}, files...)
}

func scenarioName(f string) string {
	if f == "" {
		return "defaults"
	}
	return strings.TrimSuffix(filepath.Base(f), ".yaml")
}

func valuesArgs(f string) []string {
	if f == "" {
		return nil
	}
	return []string{"-f", f}
}

func TestLint(t *testing.T) {
	t.Parallel()
	for _, f := range scenarios(t) {
		t.Run(scenarioName(f), func(t *testing.T) {
			t.Parallel()
			helm(t, nil, append([]string{"lint", "--strict", chartDir(t)}, valuesArgs(f)...)...)
		})
	}
}

// TestTemplate renders the chart with the defaults and with every scenario,
// decodes every object strictly into its Kubernetes type and checks the
// properties the chart promises.
func TestTemplate(t *testing.T) {
	t.Parallel()
	for _, f := range scenarios(t) {
		t.Run(scenarioName(f), func(t *testing.T) {
			t.Parallel()
			out := helm(t, nil, append([]string{"template", "rel", chartDir(t), "--namespace", "ns"}, valuesArgs(f)...)...)
			objs := decodeManifests(t, out)
			checkRendered(t, objs)
		})
	}
}

// checkRendered checks what every scenario must satisfy.
func checkRendered(t *testing.T, objs []object) {
	t.Helper()
	servers := map[string]int32{"coordinator": 7072, "broker": 7071, "proxy": 7070}
	for role, port := range servers {
		d := find[*appsv1.Deployment](t, objs, "Deployment", "rel-strata-"+role)
		spec := d.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", role, len(spec.Containers))
		}
		c := spec.Containers[0]
		if got := filepath.Base(c.Command[0]); got != role {
			t.Errorf("%s runs %s", role, got)
		}
		// The kubelet's gRPC probe speaks no TLS: with TLS on, readiness is
		// a TCP check of the same port.
		grpcReady := c.ReadinessProbe != nil && c.ReadinessProbe.GRPC != nil && c.ReadinessProbe.GRPC.Port == port
		tcpReady := c.ReadinessProbe != nil && c.ReadinessProbe.TCPSocket != nil && c.ReadinessProbe.TCPSocket.Port.IntVal == port && hasEnv(c.Env, "STRATA_TLS_CERT")
		if !grpcReady && !tcpReady {
			t.Errorf("%s: readiness probe is not gRPC health (or, with TLS, TCP) on %d: %+v", role, port, c.ReadinessProbe)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: liveness probe is not /healthz: %+v", role, c.LivenessProbe)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: no CPU request or memory limit", role)
		}
		if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: root filesystem is writable", role)
		}
		if p := spec.SecurityContext; p == nil || p.RunAsNonRoot == nil || !*p.RunAsNonRoot {
			t.Errorf("%s: may run as root", role)
		}
		if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("%s: selector %v does not select its pods %v", role, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
		if role != "coordinator" {
			checkGoMemLimit(t, role, c)
		}
		if role == "broker" {
			// Several brokers restart at once in a rollout
			// (docs/elasticity.md, "Rolling restarts").
			if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxSurge == nil || ru.MaxUnavailable == nil {
				t.Errorf("broker Deployment has no explicit rolling update: %+v", d.Spec.Strategy)
			}
			// Stateless: no volumes but Secrets (TLS material), no local
			// data directory.
			for _, v := range spec.Volumes {
				if v.Secret == nil {
					t.Errorf("broker has a volume that is not a Secret: %+v", v)
				}
			}
			for _, e := range c.Env {
				if e.Name == "STRATA_DATA_DIR" {
					t.Error("broker stores data locally (STRATA_DATA_DIR)")
				}
			}
		}
	}
	svc := find[*corev1.Service](t, objs, "Service", "rel-strata-proxy")
	proxy := find[*appsv1.Deployment](t, objs, "Deployment", "rel-strata-proxy")
	if !selects(svc.Spec.Selector, proxy.Spec.Template.Labels) {
		t.Errorf("proxy Service selects %v, not the proxy pods", svc.Spec.Selector)
	}
	// Every Service and PodDisruptionBudget selects some rendered pods.
	for _, o := range objs {
		var sel map[string]string
		switch v := o.Obj.(type) {
		case *corev1.Service:
			sel = v.Spec.Selector
		default:
			continue
		}
		if !anyPodSelected(objs, sel) {
			t.Errorf("Service %s selects no pods (%v)", o.Name, sel)
		}
	}
}

// selects reports whether selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func anyPodSelected(objs []object, sel map[string]string) bool {
	for _, o := range objs {
		var labels map[string]string
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			labels = v.Spec.Template.Labels
		case *appsv1.StatefulSet:
			labels = v.Spec.Template.Labels
		default:
			continue
		}
		if selects(sel, labels) {
			return true
		}
	}
	return false
}

// TestSchemaRejects checks that values.schema.json and validateValues turn
// away wrong types, impossible values and contradictions with a clear
// message naming the value.
func TestSchemaRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  []string
		want string // in helm's error
	}{
		{"negative broker replicas", []string{"broker.replicaCount=-1"}, "broker/replicaCount"},
		{"negative proxy replicas", []string{"proxy.replicaCount=-3"}, "proxy/replicaCount"},
		{"replicas not a number", []string{"coordinator.replicaCount=two"}, "coordinator/replicaCount"},
		{"bad flush duration", []string{"broker.flushInterval=soon"}, "broker/flushInterval"},
		{"zero flush duration", []string{"broker.flushInterval=0s"}, "broker/flushInterval"},
		{"negative duration", []string{"proxy.maxFetchWait=-1s"}, "proxy/maxFetchWait"},
		{"lease ttl not whole seconds", []string{"broker.leaseTTL=1500ms"}, "broker/leaseTTL"},
		{"zero flush bytes", []string{"broker.flushBytes=0"}, "broker/flushBytes"},
		{"linger not a boolean", []string{"broker.lingerWhenIdle=sometimes"}, "broker/lingerWhenIdle"},
		{"cpu target over 100", []string{"broker.autoscaling.targetCPUUtilizationPercentage=150"}, "targetCPUUtilizationPercentage"},
		{"unknown service type", []string{"proxy.service.type=Ingress"}, "proxy/service/type"},
		{"port out of range", []string{"proxy.service.port=70000"}, "proxy/service/port"},
		{"unknown value key", []string{"broker.replicas=3"}, "replicas"},
		{"bad log level", []string{"logLevel=loud"}, "logLevel"},
		{"bad bucket name", []string{"s3.bucket=Not_A_Bucket"}, "s3/bucket"},
		{"etcd url without scheme", []string{"etcd.endpoints={etcd:2379}"}, "etcd/endpoints"},
		{"even etcd members", []string{"etcd.bundled.replicaCount=2"}, "etcd/bundled/replicaCount"},
		{"no etcd at all", []string{"etcd.bundled.enabled=false"}, "set etcd.endpoints"},
		{"endpoint with bundled minio", []string{"s3.endpoint=http://s3.local"}, "s3.endpoint must be empty"},
		{"half the keys", []string{"s3.credentials.accessKey=a"}, "set both accessKey and secretKey"},
		{"min above max", []string{"broker.autoscaling.enabled=true", "broker.autoscaling.minReplicas=5", "broker.autoscaling.maxReplicas=2"}, "minReplicas must not exceed maxReplicas"},
		{"tls without a secret", []string{"security.tls.enabled=true"}, "security.tls.secretName"},
		{"client certs without tls", []string{"security.auth.clientCerts=true"}, "needs security.tls.enabled"},
		{"unknown client auth", []string{"security.tls.proxyClientAuth=maybe"}, "proxyClientAuth"},
		{"bad trust domain", []string{"security.tls.trustDomain=Prod/1"}, "trustDomain"},
		{"a role without a certificate", []string{"security.tls.enabled=true", "security.tls.roleSecretNames.proxy=p", "security.tls.roleSecretNames.broker=b"}, "roleSecretNames.coordinator"},
		{"client ca without tls", []string{"security.tls.clientCASecretName=cca"}, "clientCASecretName needs security.tls.enabled"},
		{"network policy not a boolean", []string{"networkPolicy.enabled=maybe"}, "networkPolicy/enabled"},
		{"kafka advertised address without a port", []string{"proxy.kafka.advertisedAddr=kafka.example.com"}, "proxy/kafka/advertisedAddr"},
		{"kafka port out of range", []string{"proxy.kafka.port=0"}, "proxy/kafka/port"},
		{"auto-created topics without partitions", []string{"proxy.kafka.numPartitions=0"}, "proxy/kafka/numPartitions"},
		{"auto-create not a boolean", []string{"proxy.kafka.autoCreateTopics=sometimes"}, "proxy/kafka/autoCreateTopics"},
		{"go memory limit without a unit", []string{"proxy.goMemLimit=lots"}, "proxy/goMemLimit"},
		{"go memory limit in kubernetes units", []string{"broker.goMemLimit=128Mi"}, "broker/goMemLimit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"template", "rel", chartDir(t)}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			_, err := helmErr(t, nil, args...)
			if err == nil {
				t.Fatalf("helm template accepted %v", tt.set)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not mention %q: %v", tt.want, err)
			}
		})
	}
}

// TestChartFiles checks the files a user reads: NOTES.txt says how to reach
// the proxy, and there is a helm test.
func TestChartFiles(t *testing.T) {
	t.Parallel()
	notes, err := os.ReadFile(filepath.Join(chartDir(t), "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(notes), "port-forward") || !strings.Contains(string(notes), "STRATA_SERVER") {
		t.Error("NOTES.txt does not say how to reach the proxy")
	}
	out := helm(t, nil, "template", "rel", chartDir(t), "--show-only", "templates/tests/produce-consume.yaml")
	pod := find[*corev1.Pod](t, decodeManifests(t, out), "Pod", "rel-strata-test")
	if pod.Annotations["helm.sh/hook"] != "test" {
		t.Errorf("test pod hook = %q", pod.Annotations["helm.sh/hook"])
	}
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// checkGoMemLimit checks that a Go server's container sets GOMEMLIMIT below
// its memory limit, so the heap collects harder before the kernel kills it.
func checkGoMemLimit(t *testing.T, role string, c corev1.Container) {
	t.Helper()
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, e := range c.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		v, mult := e.Value, int64(1)
		for _, u := range units {
			if strings.HasSuffix(v, u.suffix) {
				v, mult = strings.TrimSuffix(v, u.suffix), u.mult
				break
			}
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Errorf("%s: GOMEMLIMIT %q: %v", role, e.Value, err)
			return
		}
		if limit := c.Resources.Limits.Memory().Value(); n*mult >= limit {
			t.Errorf("%s: GOMEMLIMIT %s is not below the memory limit %d", role, e.Value, limit)
		}
		return
	}
	t.Errorf("%s: no GOMEMLIMIT", role)
}

// TestKafkaAutoCreateValues: the proxy gets Kafka topic auto-creation off
// by default and as set (proxy.kafka.autoCreateTopics, numPartitions), and
// Kafka's request limits (proxy.kafka.maxRequestBytes,
// maxQueuedRequestBytes).
func TestKafkaAutoCreateValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set                         []string
		create, nums, limit, queued string
	}{
		{nil, "false", "1", "104857600", "0"},
		{[]string{"--set", "proxy.kafka.autoCreateTopics=true", "--set", "proxy.kafka.numPartitions=6",
			"--set", "proxy.kafka.maxRequestBytes=8388608", "--set", "proxy.kafka.maxQueuedRequestBytes=33554432"},
			"true", "6", "8388608", "33554432"},
	} {
		got := deploymentEnv(t, tc.set, "rel-strata-proxy")
		if got["STRATA_KAFKA_AUTO_CREATE_TOPICS"] != tc.create || got["STRATA_KAFKA_NUM_PARTITIONS"] != tc.nums ||
			got["STRATA_KAFKA_MAX_REQUEST_BYTES"] != tc.limit || got["STRATA_KAFKA_MAX_QUEUED_REQUEST_BYTES"] != tc.queued {
			t.Errorf("with %v: auto-create %q, partitions %q, request limit %q, queued %q; want %q, %q, %q and %q", tc.set,
				got["STRATA_KAFKA_AUTO_CREATE_TOPICS"], got["STRATA_KAFKA_NUM_PARTITIONS"], got["STRATA_KAFKA_MAX_REQUEST_BYTES"],
				got["STRATA_KAFKA_MAX_QUEUED_REQUEST_BYTES"], tc.create, tc.nums, tc.limit, tc.queued)
		}
	}
}

// TestBrokerFlushValues checks that the broker's flush policy reaches its
// flags: a store that bills PUTs wants lingerWhenIdle with a longer
// interval, which bounds the PUT rate by the load instead of the latency.
func TestBrokerFlushValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set              []string
		interval, linger string
	}{
		{nil, "5ms", "false"},
		{[]string{"--set", "broker.lingerWhenIdle=true", "--set", "broker.flushInterval=100ms"}, "100ms", "true"},
	} {
		got := deploymentEnv(t, tc.set, "rel-strata-broker")
		if got["STRATA_FLUSH_INTERVAL"] != tc.interval || got["STRATA_LINGER_WHEN_IDLE"] != tc.linger {
			t.Errorf("with %v: flush interval %q, linger %q; want %q and %q", tc.set,
				got["STRATA_FLUSH_INTERVAL"], got["STRATA_LINGER_WHEN_IDLE"], tc.interval, tc.linger)
		}
	}
}

// deploymentEnv renders the chart as release "rel" with the helm args set
// and returns the literal environment of the named Deployment's first
// container.
func deploymentEnv(t *testing.T, set []string, name string) map[string]string {
	t.Helper()
	out := helm(t, nil, append([]string{"template", "rel", chartDir(t)}, set...)...)
	c := find[*appsv1.Deployment](t, decodeManifests(t, out), "Deployment", name).Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}
