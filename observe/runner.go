package observe

import "context"

// Runner runs one command on a VM and returns its standard output. The SSH
// executor in package actuators implements it; observe only reads through
// it. A command that exits non-zero returns an error that carries its
// standard error.
type Runner interface {
	Run(ctx context.Context, vm string, argv []string) ([]byte, error)
}
