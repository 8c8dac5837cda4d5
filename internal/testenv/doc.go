// Package testenv starts the real external processes that Strata's
// integration and end-to-end tests run against — etcd, MinIO and, later,
// Strata's own binaries — on free loopback ports, waits until each one
// reports ready, and stops them when the test is over.
//
// Nothing here is a stand-in: etcd and MinIO are the real servers, built once
// from the Go module proxy by scripts/tools.sh and cached outside the
// repository (STRATA_TOOLS_DIR, default $HOME/.cache/strata/bin). When a
// binary is missing the helpers build it; when a process cannot start they
// fail the test loudly. They never skip.
package testenv
