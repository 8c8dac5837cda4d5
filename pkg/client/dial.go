package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/strata-mq/strata/pkg/rpc"
)

// A client talks to one or several proxies over one gRPC channel:
//
//   - "host:port" is resolved with DNS; every address the name resolves to
//     is a proxy (gRPC re-resolves it when connections fail);
//   - "a:7070,b:7070" lists proxies, each "host:port" standing for one
//     proxy;
//   - a gRPC target such as "dns://10.0.0.2/proxies.example:7070" (only
//     on its own) picks the resolver.
//
// Requests are spread round-robin over the proxies whose connection is up;
// a proxy that fails is skipped until gRPC has reconnected to it, which it
// keeps trying with a short backoff (ReconnectBackoff), so a proxy that
// comes back takes traffic again within a fraction of a second.

// proxiesScheme is the scheme of the resolver that serves a list of
// proxy addresses.
const proxiesScheme = "strata-proxies"

// roundRobinConfig is the channel's service config: requests go round-robin to
// every proxy that is connected, instead of gRPC's default of one.
const roundRobinConfig = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// dialProxies returns the channel to the proxies at addrs (see above).
func dialProxies(addrs string, cfg clientConfig) (*grpc.ClientConn, error) {
	list, err := parseProxies(addrs)
	if err != nil {
		return nil, err
	}
	gopts := []grpc.DialOption{
		grpc.WithDefaultServiceConfig(roundRobinConfig),
		grpc.WithConnectParams(rpc.ReconnectParams(cfg.reconnectMin, cfg.reconnectMax)),
	}
	target := list[0]
	if len(list) > 1 {
		r := manual.NewBuilderWithScheme(proxiesScheme)
		ras := make([]resolver.Address, len(list))
		for i, a := range list {
			// ServerName keeps TLS verification and :authority per proxy.
			ras[i] = resolver.Address{Addr: a, ServerName: a}
		}
		r.InitialState(resolver.State{Addresses: ras})
		gopts = append(gopts, grpc.WithResolvers(r))
		target = proxiesScheme + ":///" + strings.Join(list, ",")
	}
	return rpc.Dial(target, append(cfg.dial, rpc.WithGRPCOptions(gopts...))...)
}

// parseProxies splits a comma-separated list of proxy addresses. Each
// entry of a list must be host:port; a gRPC target with a scheme
// ("dns:///name:port") is accepted only on its own.
func parseProxies(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty server address", ErrInvalidRequest)
	}
	parts := strings.Split(s, ",")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if len(parts) == 1 && strings.Contains(p, "://") {
			return []string{p}, nil
		}
		if _, _, err := net.SplitHostPort(p); err != nil {
			return nil, fmt.Errorf("%w: server address %q in %q: want host:port (%v)", ErrInvalidRequest, p, s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// errNotSent is an attempt that never left the client: no proxy was
// reachable until the attempt's deadline. Such an attempt is certainly not
// written, unlike one that timed out after it was sent.
var errNotSent = errors.New("strata: no proxy reachable; the request was not sent")

// waitConnected waits until the client has a connection to a proxy (the
// channel is READY) and reports whether it has; false means ctx ended
// first.
func (c *Client) waitConnected(ctx context.Context) bool {
	for {
		st := c.conn.GetState()
		switch st {
		case connectivity.Ready:
			return true
		case connectivity.Idle:
			c.conn.Connect()
		}
		if !c.conn.WaitForStateChange(ctx, st) {
			return false
		}
	}
}
