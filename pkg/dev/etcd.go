package dev

import (
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
// once the member serves.
func startEtcd(dir string, log *slog.Logger) (*embed.Etcd, string, error) {
	cfg := embed.NewConfig()
	cfg.Name = "strata-dev"
	cfg.Dir = dir
	any0 := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{any0}, []url.URL{any0}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{any0}, []url.URL{any0}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("dev: start embedded etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("dev: embedded etcd: %w", err)
	case <-time.After(etcdStartTimeout):
		e.Close()
		return nil, "", fmt.Errorf("dev: embedded etcd not ready after %v", etcdStartTimeout)
	}
	endpoint := "http://" + e.Clients[0].Addr().String()
	log.Debug("embedded etcd ready", "endpoint", endpoint, "dir", dir)
	return e, endpoint, nil
}
