package main

import (
	"flag"
	"strings"

	"github.com/strata-mq/strata/pkg/proxy"
)

// securityFlags registers the proxy's authentication, ACL, quota and
// limit flags on cfg; the returned function finishes them after parsing.
func securityFlags(fs *flag.FlagSet, cfg *proxy.Config) func() {
	a, l := &cfg.Auth, &cfg.Limits
	fs.StringVar(&a.TokenFile, "auth-token-file", "", `file of "<principal> sha256:<hex> [scram-sha-256:…] [scram-sha-512:…]" lines (strata acl token); reloaded on change`)
	fs.BoolVar(&a.ClientCerts, "auth-client-certs", false, "authenticate clients by their verified TLS client certificate (subject common name)")
	fs.BoolVar(&a.AllowAnonymous, "auth-allow-anonymous", false, "let clients without credentials in as ANONYMOUS")
	fs.BoolVar(&a.ACLs, "acls", false, "enforce ACLs stored in etcd (deny by default)")
	superUsers := fs.String("super-users", "", "comma-separated principals allowed everything")
	fs.Int64Var(&a.Quota.Default.ProduceBytesPerSec, "quota-produce-bytes", 0, "each principal's produce byte rate per second (0: unlimited)")
	fs.Int64Var(&a.Quota.Default.FetchBytesPerSec, "quota-fetch-bytes", 0, "each principal's fetch byte rate per second (0: unlimited)")
	fs.IntVar(&l.MaxRequestBytes, "max-request-bytes", proxy.DefaultMaxRequestBytes, "largest request message")
	fs.IntVar(&l.MaxBatchBytes, "max-batch-bytes", proxy.DefaultMaxBatchBytes, "largest record batch of a produce")
	fs.IntVar(&l.MaxBatchesPerRequest, "max-batches-per-request", proxy.DefaultMaxBatchesPerRequest, "most record batches in one produce")
	fs.IntVar(&l.MaxHeadersPerRecord, "max-headers-per-record", 0, "most headers per record (0: not checked; checking decompresses batches)")
	fs.IntVar(&l.MaxTopicsPerRequest, "max-topics-per-request", proxy.DefaultMaxTopicsPerRequest, "most topics one request names")
	fs.IntVar(&l.MaxTopics, "max-topics", proxy.DefaultMaxTopics, "most topics in the cluster (-1: no limit)")
	fs.IntVar(&l.MaxPartitionsPerTopic, "max-partitions-per-topic", proxy.DefaultMaxPartitionsPerTopic, "most partitions of a new topic (-1: no limit)")
	fs.IntVar(&l.MaxConnsPerClient, "max-conns-per-client", proxy.DefaultMaxConnsPerClient, "most open connections from one client IP (-1: no limit)")
	return func() {
		for _, u := range strings.Split(*superUsers, ",") {
			if u = strings.TrimSpace(u); u != "" {
				a.SuperUsers = append(a.SuperUsers, u)
			}
		}
	}
}
