// Package charttest tests the Helm chart in charts/strata with real
// processes: helm lint and template with every scenario under ci/, strict
// decoding of each rendered object into its Kubernetes type, helm install,
// upgrade and uninstall against a real kube-apiserver on a real etcd, and a
// wiring test that starts Strata's binaries with exactly the command, args
// and environment the chart renders, then produces and consumes through the
// proxy. It also checks that the binaries the Dockerfile builds are static.
//
// Helm and kube-apiserver come from scripts/tools.sh (make tools).
package charttest
