package charttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/strata-mq/strata/internal/testenv"
)

// etcd is shared by the package's tests; each uses its own key prefix.
var etcd *testenv.Etcd

func TestMain(m *testing.M) { testenv.Main(m, &etcd) }

// chartDir returns the chart's directory.
func chartDir(t testing.TB) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "charts", "strata")
}

// helm runs the helm binary with args and returns its stdout; a failure
// fails the test with stderr.
func helm(t testing.TB, env []string, args ...string) []byte {
	t.Helper()
	out, err := helmErr(t, env, args...)
	if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// helmErr runs helm and returns its stdout, or an error that holds stderr.
func helmErr(t testing.TB, env []string, args ...string) ([]byte, error) {
	t.Helper()
	bin, err := testenv.Tool("helm")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	// Keep helm's caches and config out of the user's home.
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%w\n%s%s", err, stderr.Bytes(), stdout.Bytes())
	}
	return stdout.Bytes(), nil
}

// object is one rendered manifest, decoded strictly into its type.
type object struct {
	Kind, Name string
	// Source is the template file the object came from.
	Source string
	// Obj is a pointer to the typed object, e.g. *appsv1.Deployment.
	Obj any
}

// newTyped returns a new object of the Kubernetes type for apiVersion and
// kind, or nil if the chart is not expected to render that kind.
func newTyped(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Pod":
		return &corev1.Pod{}
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &serviceMonitor{}
	}
	return nil
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor the
// chart renders; strict decoding rejects anything else.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// decodeManifests splits helm's output into documents and decodes each
// strictly (unknown or duplicate fields are errors) into its type.
func decodeManifests(t testing.TB, out []byte) []object {
	t.Helper()
	var objs []object
	for _, doc := range strings.Split("\n"+string(out), "\n---") {
		source := ""
		if i := strings.Index(doc, "# Source: "); i >= 0 {
			source = strings.TrimSpace(strings.SplitN(doc[i+len("# Source: "):], "\n", 2)[0])
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: %v\n%s", source, err, doc)
		}
		if head.Kind == "" {
			continue // only comments
		}
		typed := newTyped(head.APIVersion, head.Kind)
		if typed == nil {
			t.Fatalf("%s: unexpected kind %s %s", source, head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), typed); err != nil {
			t.Fatalf("%s: %s %s does not decode strictly: %v", source, head.Kind, head.Metadata.Name, err)
		}
		objs = append(objs, object{Kind: head.Kind, Name: head.Metadata.Name, Source: source, Obj: typed})
	}
	return objs
}

// find returns the rendered object of kind and name, failing the test if
// there is none.
func find[T any](t testing.TB, objs []object, kind, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o.Obj.(T)
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	var zero T
	return zero
}
