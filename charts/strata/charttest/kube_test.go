package charttest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/strata-mq/strata/internal/testenv"
)

// kubeAPI is a real kube-apiserver on the package's etcd. No controllers
// or kubelet run: the objects, not the pods, are under test.
type kubeAPI struct {
	url, token string
	// kubeconfig is a file helm reads.
	kubeconfig string
	client     *http.Client
}

// startKubeAPI starts kube-apiserver with a service-account key pair, a
// static token with cluster-admin rights and RBAC authorization.
func startKubeAPI(t *testing.T) *kubeAPI {
	t.Helper()
	bin, err := testenv.Tool("kube-apiserver")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	writeFile(t, pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	token := fmt.Sprintf("charttest-%d", time.Now().UnixNano())
	tokenFile := filepath.Join(dir, "tokens.csv")
	writeFile(t, tokenFile, []byte(token+`,admin,admin,"system:masters"`+"\n"))
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	k := &kubeAPI{
		url:   fmt.Sprintf("https://127.0.0.1:%d", port),
		token: token,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			// The server's certificate is self-signed at start.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a local test server
		}},
	}
	proc, err := testenv.StartProcess(testenv.ProcessSpec{
		Name:   "kube-apiserver",
		Path:   bin,
		LogDir: dir,
		Args: []string{
			"--etcd-servers=" + etcd.Endpoint,
			fmt.Sprintf("--etcd-prefix=/t-kube-%d", time.Now().UnixNano()),
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			// A loopback advertise address needs no "kubernetes" endpoints.
			"--endpoint-reconciler-type=none",
			fmt.Sprintf("--secure-port=%d", port),
			"--cert-dir=" + filepath.Join(dir, "certs"),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pubFile,
			"--service-account-signing-key-file=" + keyFile,
			"--token-auth-file=" + tokenFile,
			"--authorization-mode=RBAC",
			"--service-cluster-ip-range=10.96.0.0/16",
			"--enable-priority-and-fairness=false",
		},
		Ready: func(ctx context.Context) error {
			code, body, err := k.get(ctx, "/readyz")
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("readyz: %d %s", code, body)
			}
			return nil
		},
		ReadyTimeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Kill)
	k.kubeconfig = filepath.Join(dir, "kubeconfig")
	writeFile(t, k.kubeconfig, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context:
    cluster: test
    user: admin
current-context: test
`, k.url, token))
	return k
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// get GETs an API path and returns the status code and body.
func (k *kubeAPI) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// resourcePaths maps a kind to its API group path and resource.
var resourcePaths = map[string][2]string{
	"Deployment":              {"/apis/apps/v1", "deployments"},
	"StatefulSet":             {"/apis/apps/v1", "statefulsets"},
	"Service":                 {"/api/v1", "services"},
	"Secret":                  {"/api/v1", "secrets"},
	"ServiceAccount":          {"/api/v1", "serviceaccounts"},
	"PersistentVolumeClaim":   {"/api/v1", "persistentvolumeclaims"},
	"Pod":                     {"/api/v1", "pods"},
	"Job":                     {"/apis/batch/v1", "jobs"},
	"PodDisruptionBudget":     {"/apis/policy/v1", "poddisruptionbudgets"},
	"HorizontalPodAutoscaler": {"/apis/autoscaling/v2", "horizontalpodautoscalers"},
}

// getObject fetches kind/name from namespace ns into out (may be nil) and
// returns the HTTP status.
func (k *kubeAPI) getObject(t *testing.T, ns, kind, name string, out any) int {
	t.Helper()
	rp, ok := resourcePaths[kind]
	if !ok {
		t.Fatalf("no API path for kind %s", kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, body, err := k.get(ctx, fmt.Sprintf("%s/namespaces/%s/%s/%s", rp[0], ns, rp[1], name))
	if err != nil {
		t.Fatal(err)
	}
	if code == http.StatusOK && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v", kind, name, err)
		}
	}
	return code
}

// helmKube runs helm against the test API server.
func (k *kubeAPI) helm(t *testing.T, args ...string) []byte {
	t.Helper()
	return helm(t, []string{"KUBECONFIG=" + k.kubeconfig}, args...)
}

// installedObjects decodes the release's stored manifest.
func (k *kubeAPI) installedObjects(t *testing.T, release, ns string) []object {
	t.Helper()
	return decodeManifests(t, k.helm(t, "get", "manifest", release, "-n", ns))
}

// checkAllExist fails the test unless every object exists in the server.
func (k *kubeAPI) checkAllExist(t *testing.T, ns string, objs []object) {
	t.Helper()
	if len(objs) == 0 {
		t.Fatal("release has no objects")
	}
	for _, o := range objs {
		if code := k.getObject(t, ns, o.Kind, o.Name, nil); code != http.StatusOK {
			t.Errorf("%s %s: GET answered %d", o.Kind, o.Name, code)
		}
	}
}

// TestInstallUpgradeUninstall installs the chart into a real API server,
// upgrades it with another broker count and uninstalls it; every object
// must be accepted, follow the upgrade, and go away.
func TestInstallUpgradeUninstall(t *testing.T) {
	t.Parallel()
	k := startKubeAPI(t)
	chart := chartDir(t)
	const ns, rel = "strata", "strata"

	k.helm(t, "install", rel, chart, "-n", ns, "--create-namespace", "--set", "broker.replicaCount=2")
	objs := k.installedObjects(t, rel, ns)
	k.checkAllExist(t, ns, objs)
	var before corev1.Secret
	k.getObject(t, ns, "Secret", "strata-s3", &before)
	var d appsv1.Deployment
	k.getObject(t, ns, "Deployment", "strata-broker", &d)
	if *d.Spec.Replicas != 2 {
		t.Fatalf("broker replicas after install = %d, want 2", *d.Spec.Replicas)
	}

	k.helm(t, "upgrade", rel, chart, "-n", ns, "--set", "broker.replicaCount=5")
	objs = k.installedObjects(t, rel, ns)
	k.checkAllExist(t, ns, objs)
	k.getObject(t, ns, "Deployment", "strata-broker", &d)
	if *d.Spec.Replicas != 5 {
		t.Fatalf("broker replicas after upgrade = %d, want 5", *d.Spec.Replicas)
	}
	var after corev1.Secret
	k.getObject(t, ns, "Secret", "strata-s3", &after)
	if string(before.Data["access-key"]) == "" || string(before.Data["secret-key"]) != string(after.Data["secret-key"]) {
		t.Error("generated S3 keys changed across the upgrade")
	}
	if code := k.getObject(t, ns, "Job", "strata-minio-bucket-1", nil); code != http.StatusNotFound {
		t.Errorf("the first revision's bucket Job is still there (%d)", code)
	}
	status := string(k.helm(t, "status", rel, "-n", ns))
	if !strings.Contains(status, "STATUS: deployed") || !strings.Contains(status, "REVISION: 2") {
		t.Errorf("helm status:\n%s", status)
	}
	if !strings.Contains(status, "port-forward") {
		t.Errorf("NOTES do not say how to reach the proxy:\n%s", status)
	}

	k.helm(t, "uninstall", rel, "-n", ns, "--wait", "--timeout", "60s")
	for _, o := range objs {
		if code := k.getObject(t, ns, o.Kind, o.Name, nil); code != http.StatusNotFound {
			t.Errorf("%s %s still there after uninstall (%d)", o.Kind, o.Name, code)
		}
	}

	// The other scenarios that need no CRDs install too.
	for _, f := range []string{"values-small.yaml", "values-irsa.yaml"} {
		ns := strings.TrimSuffix(strings.TrimPrefix(f, "values-"), ".yaml")
		k.helm(t, "install", "s-"+ns, chart, "-n", ns, "--create-namespace", "-f", filepath.Join(chart, "ci", f))
		k.checkAllExist(t, ns, k.installedObjects(t, "s-"+ns, ns))
	}
}
