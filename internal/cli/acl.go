package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/client"
)

var aclCmd = &command{summary: "manage ACLs and bearer tokens", subs: map[string]*command{
	"add":    aclAddCmd,
	"remove": aclRemoveCmd,
	"list":   aclListCmd,
	"token":  aclTokenCmd,
}}

const aclUsage = "PRINCIPAL OPERATION RESOURCE"

const aclHelp = `OPERATION is produce, consume, describe, create, delete, alter, admin or all.
RESOURCE is topic:NAME, group:NAME or cluster; NAME may be "*" or end in "*".`

// parseACL reads PRINCIPAL OPERATION RESOURCE.
func parseACL(args []string) (client.ACL, error) {
	if err := exactArgs(args, "principal", "operation", "resource"); err != nil {
		return client.ACL{}, err
	}
	a := client.ACL{Principal: args[0], Operation: args[1]}
	typ, name, ok := strings.Cut(args[2], ":")
	switch {
	case args[2] == "cluster":
		a.ResourceType, a.ResourceName = "cluster", "cluster"
	case ok && (typ == "topic" || typ == "group") && name != "":
		a.ResourceType, a.ResourceName = typ, name
	default:
		return client.ACL{}, usagef("resource %q: want topic:NAME, group:NAME or cluster", args[2])
	}
	return a, nil
}

var aclAddCmd = &command{
	summary: "allow a principal an operation on a resource",
	usage:   aclUsage + "\n\n" + aclHelp,
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			acl, err := parseACL(args)
			if err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			enforced, err := c.AddACLEnforced(ctx, acl)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Allowed %s to %s %s:%s.\n", acl.Principal, acl.Operation, acl.ResourceType, acl.ResourceName)
			if !enforced {
				fmt.Fprintf(a.Stderr, "warning: the proxy at %s does not enforce ACLs (start it with --acls), so this grant has no effect there yet\n", a.server)
			}
			return nil
		}
	},
}

var aclRemoveCmd = &command{
	summary: "remove a grant",
	usage:   aclUsage + "\n\n" + aclHelp,
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *App, args []string) error {
			acl, err := parseACL(args)
			if err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			removed, err := c.RemoveACL(ctx, acl)
			if err != nil {
				return err
			}
			if !removed {
				fmt.Fprintln(a.Stdout, "No such grant.")
				return nil
			}
			fmt.Fprintf(a.Stdout, "Removed: %s may no longer %s %s:%s.\n", acl.Principal, acl.Operation, acl.ResourceType, acl.ResourceName)
			return nil
		}
	},
}

var aclListCmd = &command{
	summary: "list grants",
	setup: func(fs *flag.FlagSet) runFunc {
		principal := fs.String("principal", "", "only this principal's grants")
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			ctx, c, done, err := a.adminClient(ctx)
			if err != nil {
				return err
			}
			defer done()
			acls, err := c.ListACLs(ctx, *principal)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PRINCIPAL\tOPERATION\tRESOURCE")
			for _, acl := range acls {
				res := acl.ResourceType + ":" + acl.ResourceName
				if acl.ResourceType == "cluster" {
					res = "cluster"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", acl.Principal, acl.Operation, res)
			}
			return w.Flush()
		}
	},
}

var aclTokenCmd = &command{
	summary: "make a new token for a principal (a bearer token, or the password of Kafka's SASL/PLAIN and SCRAM); prints it and the line for the proxy's token file",
	usage:   "PRINCIPAL",
	setup: func(*flag.FlagSet) runFunc {
		return func(_ context.Context, a *App, args []string) error {
			if err := exactArgs(args, "principal"); err != nil {
				return err
			}
			if args[0] == "" || strings.ContainsAny(args[0], " \t\n") || args[0] == auth.Anonymous || args[0] == "*" {
				return usagef("principal %q: not empty, no spaces, and not %s or *", args[0], auth.Anonymous)
			}
			tok, err := auth.NewToken()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "token: %s\ntoken file line: %s\n", tok, auth.TokenLine(args[0], tok))
			return nil
		}
	},
}
