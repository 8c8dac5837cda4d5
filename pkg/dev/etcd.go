package dev

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// etcdStartTimeout bounds how long the embedded etcd may take to serve.
const etcdStartTimeout = time.Minute

// startEtcd runs a single-member etcd inside this process, with its data in
// dir and its client and peer listeners on free loopback ports. It returns
// once the member serves, or as soon as ctx ends (an interrupted start
// returns at once; the half-started etcd is closed in the background).
func startEtcd(ctx context.Context, dir string, log *slog.Logger) (*embed.Etcd, string, error) {
	cfg := embed.NewConfig()
	cfg.Name = "strata-dev"
	cfg.Dir = dir
	any0 := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{any0}, []url.URL{any0}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{any0}, []url.URL{any0}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())

	ch := make(chan etcdStarted, 1)
	go func() { // owned by the select below, or by the closer it hands off to
		e, err := embed.StartEtcd(cfg)
		ch <- etcdStarted{e, err}
	}()
	timeout := time.NewTimer(etcdStartTimeout)
	defer timeout.Stop()
	var e *embed.Etcd
	select {
	case s := <-ch:
		if s.err != nil {
			return nil, "", fmt.Errorf("dev: start embedded etcd in %s: %w", dir, s.err)
		}
		e = s.e
	case <-ctx.Done():
		go closeWhenStarted(ch)
		return nil, "", fmt.Errorf("dev: starting embedded etcd: %w", ctx.Err())
	case <-timeout.C:
		go closeWhenStarted(ch)
		return nil, "", fmt.Errorf("dev: embedded etcd not started after %v", etcdStartTimeout)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("dev: embedded etcd: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, "", fmt.Errorf("dev: waiting for embedded etcd: %w", ctx.Err())
	case <-timeout.C:
		e.Close()
		return nil, "", fmt.Errorf("dev: embedded etcd not ready after %v", etcdStartTimeout)
	}
	endpoint := "http://" + e.Clients[0].Addr().String()
	log.Debug("embedded etcd ready", "endpoint", endpoint, "dir", dir)
	return e, endpoint, nil
}

// etcdStarted is the outcome of embed.StartEtcd.
type etcdStarted struct {
	e   *embed.Etcd
	err error
}

// closeWhenStarted closes an etcd whose start was abandoned, once it has
// started; the process usually exits first.
func closeWhenStarted(ch <-chan etcdStarted) {
	if s := <-ch; s.err == nil {
		s.e.Close()
	}
}
