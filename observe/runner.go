package observe

import (
	"context"
	"net"
)

// Runner runs one command on a VM and returns its standard output. The SSH
// executor in package actuators implements it. A command that exits
// non-zero returns an error that carries its standard error.
type Runner interface {
	Run(ctx context.Context, vm string, argv []string) ([]byte, error)
}

// Dialer opens a connection from a VM: "unix" to a socket path on it (its
// Docker engine, DockerSocket), "tcp" to host:port as the VM sees them (a
// node's PostgreSQL on 127.0.0.1). The SSH executor forwards them over
// the VM's connection. Observers read through it only.
type Dialer interface {
	Dial(ctx context.Context, vm, network, addr string) (net.Conn, error)
}
