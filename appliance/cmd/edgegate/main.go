// Command edgegate is the edge appliance's daemon and command-line tool.
package main

import (
	"os"

	"github.com/edgegate/edgegate/appliance"
)

func main() {
	os.Exit(appliance.Main(os.Args[1:], os.Stdout, os.Stderr))
}
