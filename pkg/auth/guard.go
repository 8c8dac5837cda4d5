package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// DefaultReloadInterval is how often the token file is checked for change.
const DefaultReloadInterval = time.Second

// Config configures a Guard. The zero Config authenticates nobody (every
// caller is Anonymous), authorizes everything and throttles nothing.
type Config struct {
	// TokenFile is a file of "<principal> sha256:<hex>" lines, each
	// optionally with SCRAM credentials derived from the token (see
	// HashToken, TokenLine); callers authenticate with
	// "authorization: Bearer <token>". Reloaded when it changes. Empty
	// disables token authentication.
	TokenFile string
	// ClientCerts authenticates callers by their verified TLS client
	// certificate: the principal is the subject common name. The
	// listener must verify client certificates (rpc.ClientAuthRequest or
	// rpc.ClientAuthRequire).
	ClientCerts bool
	// AllowAnonymous lets callers without credentials in as Anonymous when
	// TokenFile or ClientCerts is set. (With neither set, everyone is
	// Anonymous.) A wrong token is refused even then.
	AllowAnonymous bool
	// ACLs turns authorization on: every operation needs an ACL that
	// allows it (deny by default), except for SuperUsers.
	ACLs bool
	// SuperUsers are principals allowed everything, to bootstrap ACLs.
	SuperUsers []string
	// Meta stores the ACLs. Required when ACLs is set; the Guard does not
	// close it.
	Meta *meta.Store
	// Quota sets per-principal produce and fetch byte rates.
	Quota QuotaConfig
	// ReloadInterval is how often TokenFile is checked for change. Default
	// DefaultReloadInterval.
	ReloadInterval time.Duration
	// Logger receives authentication failures and denials. Default
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the Guard's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// AuthenticationEnabled reports whether callers must present credentials
// (tokens or client certificates are configured).
func (c Config) AuthenticationEnabled() bool { return c.TokenFile != "" || c.ClientCerts }

// Enabled reports whether the Guard does anything at all.
func (c Config) Enabled() bool {
	return c.AuthenticationEnabled() || c.ACLs || c.Quota.enabled()
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ACLs && c.Meta == nil:
		return errors.New("auth: config: ACLs need a metadata store (Meta)")
	case c.ReloadInterval < 0:
		return errors.New("auth: config: reload interval must be positive")
	case slices.Contains(c.SuperUsers, ""):
		return errors.New("auth: config: empty super user name")
	}
	return c.Quota.Validate()
}

// Guard authenticates, authorizes and throttles. It is safe for concurrent
// use.
type Guard struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	tokens  *tokenFile // nil without a token file
	acls    *acls      // nil without ACLs
	quotas  *quotas

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New loads the token file and returns a Guard; Start begins following
// the ACLs.
func New(cfg Config) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Guard{cfg: cfg, log: cfg.Logger.With("component", "auth"), metrics: newMetrics(cfg.Registerer), quotas: newQuotas(cfg.Quota)}
	if cfg.TokenFile != "" {
		t, err := loadTokenFile(cfg.TokenFile, cfg.ReloadInterval, g.log)
		if err != nil {
			return nil, err
		}
		g.tokens = t
	}
	if cfg.ACLs {
		g.acls = newACLs(cfg.Meta, g.log)
	}
	return g, nil
}

// Start follows the ACLs in etcd in the background until Close.
func (g *Guard) Start() {
	if g.acls == nil || g.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.wg.Go(func() { g.acls.run(ctx) })
}

// Close stops following the ACLs.
func (g *Guard) Close() {
	if g.cancel != nil {
		g.cancel()
	}
	g.wg.Wait()
}

// Config returns the Guard's configuration.
func (g *Guard) Config() Config { return g.cfg }

// RefreshACLs re-reads the ACLs now, so that a change this process made is
// in force for its next call (other processes follow within the watch
// delay).
func (g *Guard) RefreshACLs(ctx context.Context) error {
	if g.acls == nil {
		return nil
	}
	_, err := g.acls.refresh(ctx)
	return err
}

// Authenticate returns the principal of a caller with credentials c, or an
// error wrapping apierr.ErrUnauthenticated.
func (g *Guard) Authenticate(c Credentials) (Principal, error) {
	p, err := g.authenticate(c)
	result := "ok"
	if err != nil {
		result = "failed"
	}
	method := p.Method
	if method == "" {
		method = "none"
	}
	g.metrics.authn.WithLabelValues(method, result).Inc()
	return p, err
}

func (g *Guard) authenticate(c Credentials) (Principal, error) {
	if !g.cfg.AuthenticationEnabled() {
		return Principal{Name: Anonymous, Method: MethodAnonymous}, nil
	}
	if c.Token != "" {
		if g.tokens != nil {
			if name, ok := g.tokens.lookup(c.Token); ok && (c.User == "" || c.User == name) {
				return Principal{Name: name, Method: MethodToken}, nil
			}
		}
		return Principal{Method: MethodToken}, apierr.Errorf(apierr.ErrUnauthenticated, "invalid bearer token (or not the named user's)")
	}
	if g.cfg.ClientCerts {
		if name := certName(c.TLS); name != "" {
			return Principal{Name: name, Method: MethodCert}, nil
		}
	}
	if g.cfg.AllowAnonymous {
		return Principal{Name: Anonymous, Method: MethodAnonymous}, nil
	}
	return Principal{}, apierr.Errorf(apierr.ErrUnauthenticated, "no bearer token or client certificate, and anonymous access is off")
}

// Allowed reports whether p may perform op on r, without logging or
// counting a denial (for filtering lists).
func (g *Guard) Allowed(ctx context.Context, p Principal, op string, r Resource) (bool, error) {
	if g.acls == nil || slices.Contains(g.cfg.SuperUsers, p.Name) {
		return true, nil
	}
	select {
	case <-g.acls.loaded:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return g.acls.allowed(p.Name, op, r), nil
}

// Authorize returns nil if p may perform op (a meta.Op* constant) on r,
// and otherwise an error wrapping apierr.ErrPermissionDenied, which it
// counts and logs with the principal.
func (g *Guard) Authorize(ctx context.Context, p Principal, op string, r Resource) error {
	ok, err := g.Allowed(ctx, p, op, r)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	g.metrics.denied.WithLabelValues(op, r.Type).Inc()
	g.log.Warn("permission denied", "principal", p.Name, "auth", p.Method, "operation", op, "resource", r.String())
	return apierr.Errorf(apierr.ErrPermissionDenied, "principal %q may not %s %s", p.Name, op, r)
}

// Throttle charges n bytes of kind (KindProduce, KindFetch) to p's quota
// and, if p is over it, waits until its rate is back within the quota (or
// ctx ends). Call it after the work, before answering.
func (g *Guard) Throttle(ctx context.Context, p Principal, kind string, n int) error {
	d := g.quotas.charge(p.Name, kind, n)
	if d <= 0 {
		return nil
	}
	g.metrics.throttled.WithLabelValues(kind).Inc()
	g.metrics.throttleSecs.WithLabelValues(kind).Add(d.Seconds())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("auth: throttled: %w", ctx.Err())
	}
}
