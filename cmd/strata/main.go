// Command strata is Strata's command line: topic administration, produce,
// consume and cluster status (see docs/cli.md).
package main

import (
	"os"

	"github.com/strata-mq/strata/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
