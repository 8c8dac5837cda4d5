package cli

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/strata-mq/strata/pkg/dev"
)

// devSecurityFlags registers `strata dev`'s security flags and returns the
// function that applies them to cfg once flags are parsed.
func devSecurityFlags(fs *flag.FlagSet, cfg *dev.Config) func(*App) error {
	useTLS := fs.Bool("tls", false, "generate a throw-away CA, a server certificate (with the servers' identities) and a client certificate in DATA-DIR/tls, and serve TLS (mutual TLS between the servers, which refuse the client certificate)")
	fs.StringVar(&cfg.Auth.TokenFile, "auth-token-file", "", `file of "<principal> sha256:<hex> [scram-sha-256:…] [scram-sha-512:…]" lines (strata acl token); clients send the token as a bearer token, or as the SASL/PLAIN or SCRAM password`)
	fs.BoolVar(&cfg.Auth.ClientCerts, "auth-client-certs", false, "authenticate clients by their TLS client certificate's subject (needs --tls)")
	fs.BoolVar(&cfg.Auth.AllowAnonymous, "auth-allow-anonymous", false, "let clients without credentials in as ANONYMOUS")
	fs.BoolVar(&cfg.Auth.ACLs, "acls", false, "enforce ACLs (deny by default)")
	superUsers := fs.String("super-users", "", "comma-separated principals allowed everything (to bootstrap ACLs)")
	return func(a *App) error {
		for _, u := range strings.Split(*superUsers, ",") {
			if u = strings.TrimSpace(u); u != "" {
				cfg.Auth.SuperUsers = append(cfg.Auth.SuperUsers, u)
			}
		}
		if cfg.Auth.ClientCerts && !*useTLS {
			return usagef("--auth-client-certs needs --tls")
		}
		if !*useTLS {
			return nil
		}
		files, err := dev.GenerateTLS(filepath.Join(cfg.DataDir, "tls"))
		if err != nil {
			return err
		}
		tc := files.ServerTLS()
		cfg.TLS = &tc
		fmt.Fprintf(a.Stdout, "TLS is on. Point clients at the throw-away CA:\n  export %s=%s\n", EnvTLSCA, files.CA)
		fmt.Fprintf(a.Stdout, "and, for mutual TLS as principal %q:\n  export %s=%s %s=%s\n", dev.ClientPrincipal, EnvTLSCert, files.ClientCert, EnvTLSKey, files.ClientKey)
		fmt.Fprintf(a.Stdout, "The client certificate opens the proxy only; brokers and the coordinator serve only the server certificate (%s).\n", files.ServerCert)
		return nil
	}
}
