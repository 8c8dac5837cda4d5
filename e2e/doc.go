// Package e2e holds Strata's end-to-end tests: they build the real
// binaries, start MinIO, etcd, coordinators, brokers and a proxy as
// separate processes on loopback, drive them with the Go SDK, and kill,
// pause and restart them.
package e2e
