package config

import (
	"errors"
	"fmt"
	"os"
)

// CheckHost checks what depends on this machine rather than on the values: that files named by
// the configuration exist and are readable. It lists every problem, like Validate.
func (c *Config) CheckHost() error {
	var p problems
	for i, cl := range c.Clusters {
		if _, err := os.Stat(cl.Kubeconfig); err != nil {
			p.add(fmt.Sprintf("clusters[%d].kubeconfig", i), quote(cl.Kubeconfig), "cannot be read: %v", err)
		}
	}
	if c.Envoy.Mode == EnvoySupervise {
		if st, err := os.Stat(c.Envoy.Binary); err != nil {
			p.add("envoy.binary", quote(c.Envoy.Binary), "cannot be read: %v", err)
		} else if st.Mode()&0o111 == 0 {
			p.add("envoy.binary", quote(c.Envoy.Binary), "is not executable")
		}
	}
	return errors.Join(p...)
}
