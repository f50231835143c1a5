package desired

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DSN is the libpq multi-host connection string applications use for a
// cluster: every node with its own port, in the desired order, and
// target_session_attrs (read-write reaches the primary wherever it is;
// "any", "read-only", "prefer-standby" or "standby" for readers).
func (s *State) DSN(c *Cluster, targetSessionAttrs string) string {
	addr := map[string]string{}
	for _, vm := range s.VMs {
		addr[vm.Name] = vm.Address
	}
	hosts := make([]string, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		hosts = append(hosts, net.JoinHostPort(addr[n.VM], strconv.Itoa(n.Port)))
	}
	q := url.Values{}
	q.Set("target_session_attrs", targetSessionAttrs)
	if m := c.SSLMode(); m != "prefer" { // prefer is libpq's default
		q.Set("sslmode", m)
	}
	u := url.URL{Scheme: "postgresql", User: url.User(c.User), Host: strings.Join(hosts, ","), Path: "/" + c.Database, RawQuery: q.Encode()}
	return u.String()
}

// SSLMode is the libpq sslmode clients of the cluster use (the reconciler,
// the nodes towards the monitor, applications): require with self-signed
// certificates, prefer when SSL is off.
func (c *Cluster) SSLMode() string {
	if c.SSL == "self-signed" {
		return "require"
	}
	return "prefer"
}
