package desired

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DSNOptions are the client settings written into a DSN.
type DSNOptions struct {
	// TargetSessionAttrs: read-write reaches the primary wherever it is;
	// "any", "read-only", "primary", "standby" or "prefer-standby" for
	// readers.
	TargetSessionAttrs string
	// ConnectTimeout bounds the connection to each host (libpq and pgx
	// both apply it per host), so a host that does not answer at all (a VM
	// powered off: no refusal, only silence) costs this much before the
	// next host is tried, instead of the kernel's TCP retries (about
	// 130 s). Whole seconds; libpq takes 2 s at least. 0 leaves it out.
	ConnectTimeout time.Duration
	// TCPUserTimeout is how long sent data may stay unacknowledged before
	// the connection is dropped: a query in flight to a primary that lost
	// power fails after this instead of after minutes of retransmissions,
	// and the application reconnects to the new primary. libpq applies it
	// to its socket; pgx passes it to the server as the setting of the
	// same name (PostgreSQL 12+), which is harmless. 0 leaves it out.
	TCPUserTimeout time.Duration
}

// Client defaults of a DSN: a dead host costs 2 s (libpq's minimum) and a
// dead connection 5 s, both below the failover time of the tuned profile,
// so an application reaches the new primary as soon as it is promoted.
const (
	DefaultDSNConnectTimeout = 2 * time.Second
	DefaultDSNTCPUserTimeout = 5 * time.Second
)

// DefaultDSNOptions are the options `reconciler dsn` prints by default.
func DefaultDSNOptions() DSNOptions {
	return DSNOptions{TargetSessionAttrs: "read-write", ConnectTimeout: DefaultDSNConnectTimeout, TCPUserTimeout: DefaultDSNTCPUserTimeout}
}

// DSN is the multi-host connection string applications use for a cluster:
// every node with its own port, in the desired order, with the options'
// target_session_attrs, connect_timeout and tcp_user_timeout. It holds only
// parameters that both libpq and pgx understand: TCP keep-alive settings
// (keepalives_idle, ...) are libpq's alone, and pgx would send them to the
// server as settings, which refuses the connection ("unrecognized
// configuration parameter"). libpq enables keep-alives by default.
func (s *State) DSN(c *Cluster, o DSNOptions) string {
	addr := map[string]string{}
	for _, vm := range s.VMs {
		addr[vm.Name] = vm.Address
	}
	hosts := make([]string, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		hosts = append(hosts, net.JoinHostPort(addr[n.VM], strconv.Itoa(n.Port)))
	}
	q := url.Values{}
	if o.TargetSessionAttrs != "" {
		q.Set("target_session_attrs", o.TargetSessionAttrs)
	}
	if m := c.SSLMode(); m != "prefer" { // prefer is libpq's default
		q.Set("sslmode", m)
	}
	if o.ConnectTimeout > 0 {
		q.Set("connect_timeout", strconv.Itoa(int((o.ConnectTimeout+time.Second-1)/time.Second)))
	}
	if o.TCPUserTimeout > 0 {
		q.Set("tcp_user_timeout", strconv.FormatInt(o.TCPUserTimeout.Milliseconds(), 10))
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
