package charttest

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestNetworkPolicies renders the chart with networkPolicy.enabled, decodes
// the policies strictly, and evaluates them (same-namespace pod selectors,
// named ports resolved against the destination's container) for every
// pair of the release's pods and a stranger: only proxies reach the
// coordinators' gRPC port, only proxies and coordinators the brokers',
// only the servers (and etcd peers) etcd; proxies and metrics stay open.
// Off by default.
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	for _, o := range decodeManifests(t, helm(t, nil, "template", "rel", chartDir(t))) {
		if o.Kind == "NetworkPolicy" {
			t.Fatalf("NetworkPolicy %s rendered by default", o.Name)
		}
	}
	objs := decodeManifests(t, helm(t, nil, "template", "rel", chartDir(t), "--set", "networkPolicy.enabled=true"))
	var policies []*networkingv1.NetworkPolicy
	for _, o := range objs {
		if p, ok := o.Obj.(*networkingv1.NetworkPolicy); ok {
			policies = append(policies, p)
		}
	}
	if len(policies) != 3 {
		t.Fatalf("%d NetworkPolicies rendered, want broker, coordinator and etcd", len(policies))
	}
	pods := map[string]peerPod{
		"proxy":       podOf(t, find[*appsv1.Deployment](t, objs, "Deployment", "rel-strata-proxy").Spec.Template),
		"broker":      podOf(t, find[*appsv1.Deployment](t, objs, "Deployment", "rel-strata-broker").Spec.Template),
		"coordinator": podOf(t, find[*appsv1.Deployment](t, objs, "Deployment", "rel-strata-coordinator").Spec.Template),
		"etcd":        podOf(t, find[*appsv1.StatefulSet](t, objs, "StatefulSet", "rel-strata-etcd").Spec.Template),
		"minio":       podOf(t, find[*appsv1.Deployment](t, objs, "Deployment", "rel-strata-minio").Spec.Template),
		"test":        {labels: find[*corev1.Pod](t, objs, "Pod", "rel-strata-test").Labels},
		"stranger":    {labels: map[string]string{"app": "elsewhere"}},
	}
	// want lists, per destination port, the sources allowed in.
	servers := []string{"proxy", "broker", "coordinator"}
	everyone := []string{"proxy", "broker", "coordinator", "etcd", "minio", "test", "stranger"}
	want := map[string][]string{
		"broker/grpc":         {"proxy", "coordinator"},
		"broker/metrics":      everyone,
		"coordinator/grpc":    {"proxy"},
		"coordinator/metrics": everyone,
		"etcd/client":         append(servers, "etcd"),
		"etcd/peer":           {"etcd"},
		"proxy/grpc":          everyone,
		"proxy/metrics":       everyone,
	}
	for dst, allowed := range want {
		role, port, _ := strings.Cut(dst, "/")
		to, ok := pods[role]
		if !ok || to.ports[port] == 0 {
			t.Fatalf("%s: no such pod or port", dst)
		}
		for _, src := range everyone {
			in := admits(policies, pods[src].labels, to, port)
			if in != slices.Contains(allowed, src) {
				t.Errorf("%s → %s: allowed=%v, want %v", src, dst, in, !in)
			}
		}
	}
}

// peerPod is what a NetworkPolicy sees of a pod: its labels and named
// ports.
type peerPod struct {
	labels map[string]string
	ports  map[string]int32
}

func podOf(t *testing.T, tmpl corev1.PodTemplateSpec) peerPod {
	t.Helper()
	p := peerPod{labels: tmpl.Labels, ports: map[string]int32{}}
	for _, c := range tmpl.Spec.Containers {
		for _, cp := range c.Ports {
			p.ports[cp.Name] = cp.ContainerPort
		}
	}
	return p
}

// admits evaluates ingress to port of pod to from a pod with labels from,
// in the same namespace: allowed when no policy selects the destination,
// else when a rule of a selecting policy matches both peer and port.
func admits(policies []*networkingv1.NetworkPolicy, from map[string]string, to peerPod, port string) bool {
	selected := false
	for _, p := range policies {
		if !matches(&p.Spec.PodSelector, to.labels) {
			continue
		}
		selected = true
		for _, r := range p.Spec.Ingress {
			if peerOK(r.From, from) && portOK(r.Ports, to, port) {
				return true
			}
		}
	}
	return !selected
}

func peerOK(peers []networkingv1.NetworkPolicyPeer, from map[string]string) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.NamespaceSelector == nil && p.IPBlock == nil && p.PodSelector != nil && matches(p.PodSelector, from) {
			return true
		}
	}
	return false
}

func portOK(ports []networkingv1.NetworkPolicyPort, to peerPod, port string) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil {
			return true
		}
		if p.Port.StrVal == port || (p.Port.StrVal == "" && p.Port.IntVal == to.ports[port]) {
			return true
		}
	}
	return false
}

func matches(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}
