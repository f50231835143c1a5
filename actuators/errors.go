package actuators

import (
	"fmt"
	"strings"
)

// HostKeyProblem says why a host key was refused.
type HostKeyProblem string

// Reasons a host key is refused. None of them is ever accepted silently.
const (
	// HostKeyUnknown: no known_hosts file has a key for the host.
	HostKeyUnknown HostKeyProblem = "unknown"
	// HostKeyChanged: known_hosts has keys for the host, and this is none
	// of them.
	HostKeyChanged HostKeyProblem = "changed"
	// HostKeyRevoked: the key is marked @revoked in known_hosts.
	HostKeyRevoked HostKeyProblem = "revoked"
	// HostKeyPinMismatch: the VM pins a fingerprint and the key has another.
	HostKeyPinMismatch HostKeyProblem = "pin-mismatch"
)

// HostKeyError is returned when a VM's SSH host key cannot be verified.
// Nothing is run on a VM whose key was refused.
type HostKeyError struct {
	VM      string
	Address string // host:port dialled
	Problem HostKeyProblem
	// KeyType and Fingerprint ("SHA256:...") describe the key the server
	// offered.
	KeyType     string
	Fingerprint string
	// Want lists the fingerprints that would have been accepted (the pin,
	// or the keys known_hosts has for the host).
	Want []string
	// Err is the underlying error of the knownhosts package, if any.
	Err error
}

func (e *HostKeyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ssh %s (%s): refusing host key %s %s: ", e.VM, e.Address, e.KeyType, e.Fingerprint)
	switch e.Problem {
	case HostKeyUnknown:
		b.WriteString("host is not in known_hosts")
	case HostKeyChanged:
		fmt.Fprintf(&b, "HOST KEY CHANGED, known_hosts has %s", strings.Join(e.Want, ", "))
	case HostKeyRevoked:
		b.WriteString("key is revoked in known_hosts")
	case HostKeyPinMismatch:
		fmt.Fprintf(&b, "does not match the pinned fingerprint %s", strings.Join(e.Want, ", "))
	default:
		b.WriteString(string(e.Problem))
	}
	return b.String()
}

func (e *HostKeyError) Unwrap() error { return e.Err }

// maxStderr caps the standard error kept in a CommandError.
const maxStderr = 4096

// CommandError is returned when a command ran and exited non-zero (or was
// killed by a signal, ExitStatus -1).
type CommandError struct {
	VM         string
	Argv       []string
	ExitStatus int
	Signal     string // set when the command was killed by a signal
	// Stderr is the command's standard error, trimmed, at most the last
	// 4 KiB.
	Stderr string
}

func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ssh %s: `%s` ", e.VM, Join(e.Argv))
	if e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exited %d", e.ExitStatus)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, ": %s", e.Stderr)
	}
	return b.String()
}

// trimStderr trims space and keeps the last maxStderr bytes (the end of a
// failing command's output usually says why).
func trimStderr(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxStderr {
		s = "..." + s[len(s)-maxStderr:]
	}
	return s
}

// ConnError is returned when a VM cannot be reached, authenticated to, or
// when the connection broke while a command ran. Op is "dial",
// "handshake", "session" or "run".
type ConnError struct {
	VM      string
	Address string
	Op      string
	Err     error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("ssh %s (%s): %s: %v", e.VM, e.Address, e.Op, e.Err)
}

func (e *ConnError) Unwrap() error { return e.Err }

// DockerError is returned by the Docker driver: the VM, the operation
// ("ensure-volume", "run", "stop", ...) and the object it was acting on.
type DockerError struct {
	VM     string
	Op     string
	Object string
	Err    error
}

func (e *DockerError) Error() string {
	return fmt.Sprintf("docker %s: %s %s: %v", e.VM, e.Op, e.Object, e.Err)
}

func (e *DockerError) Unwrap() error { return e.Err }
