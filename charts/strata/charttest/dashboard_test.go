package charttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestGrafanaDashboard renders the dashboard ConfigMap and checks that it
// carries the chart's dashboard file unchanged, as valid Grafana JSON, with
// the sidecar label; and that it is off by default.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile(filepath.Join(chartDir(t), "dashboards", "strata.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := helm(t, nil, "template", "rel", chartDir(t), "--set", "metrics.grafanaDashboard.enabled=true",
		"--show-only", "templates/dashboard.yaml")
	cm := find[*corev1.ConfigMap](t, decodeManifests(t, out), "ConfigMap", "rel-strata-dashboard")
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v lack the sidecar label", cm.Labels)
	}
	got := cm.Data["strata.json"]
	if got != strings.TrimRight(string(want), "\n") {
		t.Fatalf("the ConfigMap's dashboard differs from dashboards/strata.json")
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string            `json:"type"`
			Targets []json.RawMessage `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(got), &d); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	graphs := 0
	for _, p := range d.Panels {
		if p.Type == "timeseries" && len(p.Targets) > 0 {
			graphs++
		}
	}
	if d.Title == "" || d.UID == "" || graphs < 20 {
		t.Fatalf("dashboard %q (uid %q) has %d graphs", d.Title, d.UID, graphs)
	}

	if _, err := helmErr(t, nil, "template", "rel", chartDir(t), "--show-only", "templates/dashboard.yaml"); err == nil {
		t.Error("the dashboard ConfigMap renders by default")
	}
}
