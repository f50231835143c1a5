package actuators

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// Host says how to reach one VM over SSH.
type Host struct {
	Name    string // the VM's name in the desired state
	Address string // IP or hostname
	Port    int    // default 22
	User    string
	// HostKeyFingerprint pins the VM's host key ("SHA256:..."). When set,
	// it replaces the known_hosts check for this VM. The pin must be the
	// fingerprint of the key the server offers first for the algorithms an
	// OpenSSH client prefers (ed25519, then ECDSA, then RSA); a mismatch
	// error shows the fingerprint that was offered.
	HostKeyFingerprint string
}

// HostsFromDesired returns the SSH hosts of every VM of a desired state.
func HostsFromDesired(st *desired.State) []Host {
	hosts := make([]Host, 0, len(st.VMs))
	for _, vm := range st.VMs {
		hosts = append(hosts, Host{
			Name:               vm.Name,
			Address:            vm.Address,
			Port:               vm.SSH.Port,
			User:               vm.SSH.User,
			HostKeyFingerprint: vm.SSH.HostKeyFingerprint,
		})
	}
	return hosts
}

// SSHConfig holds what every connection of an SSHExecutor shares.
type SSHConfig struct {
	// KeyFiles are private key files (unencrypted; keep passphrase-protected
	// keys in ssh-agent).
	KeyFiles []string
	// UseAgent adds the keys of the ssh-agent at $SSH_AUTH_SOCK (or
	// AgentSocket when set).
	UseAgent    bool
	AgentSocket string
	// KnownHostsFiles are read at every connection, so an edited file takes
	// effect without a restart. A VM without a pinned fingerprint needs at
	// least one.
	KnownHostsFiles []string
	// ConnectTimeout bounds dial plus handshake (default 10s); the
	// command's context bounds it too.
	ConnectTimeout time.Duration
	// KeepaliveInterval is the period of keepalive@openssh.com requests
	// (default 15s; negative disables). A keepalive without a reply within
	// KeepaliveTimeout (default: the interval) closes the connection; the
	// next command dials again.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration
	// MaxSessions bounds the commands running at once on one connection
	// (default 8; OpenSSH refuses more than its MaxSessions, 10 by default).
	MaxSessions int
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
}

// killGrace is how long a cancelled command's session may take to close
// after SIGKILL before the whole connection is closed.
const killGrace = 2 * time.Second

// SSHExecutor runs commands on VMs over SSH. It keeps one connection per
// VM, multiplexes sessions over it, sends keepalives, and dials again
// when a connection died. It is safe for concurrent use and implements
// observe.Runner.
type SSHExecutor struct {
	cfg     SSHConfig
	log     *slog.Logger
	signers []ssh.Signer
	probe   ssh.PublicKey // a random key used to ask known_hosts which key types it holds
	hosts   map[string]*sshHost
	dials   atomic.Int64
	closed  atomic.Bool
}

var _ observe.Runner = (*SSHExecutor)(nil)

type sshHost struct {
	Host
	addr     string
	dialing  chan struct{} // one slot: one dial at a time, abandoned on ctx
	sessions chan struct{} // MaxSessions slots
	mu       sync.Mutex
	conn     *sshConn
}

type sshConn struct {
	client *ssh.Client
	done   chan struct{} // closed when the connection ended
}

func (c *sshConn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// NewSSHExecutor checks the configuration and reads the key files. It
// does not connect: connections are made by the first command on each VM.
func NewSSHExecutor(cfg SSHConfig, hosts []Host) (*SSHExecutor, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.KeepaliveInterval == 0 {
		cfg.KeepaliveInterval = 15 * time.Second
	}
	if cfg.KeepaliveTimeout <= 0 {
		cfg.KeepaliveTimeout = cfg.KeepaliveInterval
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 8
	}
	if cfg.UseAgent && cfg.AgentSocket == "" {
		cfg.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
		if cfg.AgentSocket == "" && len(cfg.KeyFiles) == 0 {
			return nil, errors.New("ssh: ssh-agent requested but SSH_AUTH_SOCK is not set, and no key file is configured")
		}
	}
	if !cfg.UseAgent && len(cfg.KeyFiles) == 0 {
		return nil, errors.New("ssh: no authentication: configure a key file or ssh-agent")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &SSHExecutor{cfg: cfg, log: log, hosts: make(map[string]*sshHost, len(hosts))}
	for _, f := range cfg.KeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("ssh: key file: %w", err)
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			var pe *ssh.PassphraseMissingError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("ssh: key file %s is passphrase-protected: load it into ssh-agent instead", f)
			}
			return nil, fmt.Errorf("ssh: key file %s: %w", f, err)
		}
		e.signers = append(e.signers, s)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ssh: probe key: %w", err)
	}
	if e.probe, err = ssh.NewPublicKey(pub); err != nil {
		return nil, fmt.Errorf("ssh: probe key: %w", err)
	}
	for _, h := range hosts {
		if h.Name == "" || h.Address == "" || h.User == "" {
			return nil, fmt.Errorf("ssh: host %q: name, address and user are required", h.Name)
		}
		if _, dup := e.hosts[h.Name]; dup {
			return nil, fmt.Errorf("ssh: host %q listed twice", h.Name)
		}
		if h.HostKeyFingerprint == "" && len(cfg.KnownHostsFiles) == 0 {
			return nil, fmt.Errorf("ssh: host %q: no known_hosts file and no pinned fingerprint: its host key cannot be verified", h.Name)
		}
		if h.HostKeyFingerprint != "" && !strings.HasPrefix(h.HostKeyFingerprint, "SHA256:") {
			return nil, fmt.Errorf("ssh: host %q: pinned fingerprint %q must start with SHA256:", h.Name, h.HostKeyFingerprint)
		}
		if h.Port == 0 {
			h.Port = 22
		}
		e.hosts[h.Name] = &sshHost{
			Host:     h,
			addr:     net.JoinHostPort(h.Address, strconv.Itoa(h.Port)),
			dialing:  make(chan struct{}, 1),
			sessions: make(chan struct{}, cfg.MaxSessions),
		}
	}
	return e, nil
}

// Dials returns how many connections were established so far (a warm
// executor dials once per VM).
func (e *SSHExecutor) Dials() int64 { return e.dials.Load() }

// Run runs argv on a VM and returns its standard output. Every element of
// argv is shell-quoted, and the login shell execs argv[0], so argv[0] must
// be a program (as with os/exec), not a shell builtin or keyword. A non-zero exit returns a *CommandError carrying
// the standard error; a refused host key a *HostKeyError; an unreachable
// VM a *ConnError. When ctx ends first, the remote command is sent
// SIGKILL, its session closed, and the error wraps ctx.Err().
func (e *SSHExecutor) Run(ctx context.Context, vm string, argv []string) ([]byte, error) {
	return e.RunInput(ctx, vm, argv, nil)
}

// RunInput is Run with stdin as the command's standard input.
func (e *SSHExecutor) RunInput(ctx context.Context, vm string, argv []string, stdin io.Reader) ([]byte, error) {
	h := e.hosts[vm]
	if h == nil {
		return nil, fmt.Errorf("ssh %s: unknown VM", vm)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("ssh %s: empty command", vm)
	}
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("ssh %s: argument %d contains a NUL byte", vm, i)
		}
	}
	cmd := Join(argv)
	for attempt := 0; ; attempt++ {
		c, err := e.conn(ctx, h)
		if err != nil {
			return nil, err
		}
		out, retry, err := e.runOn(ctx, h, c, argv, cmd, stdin)
		if err != nil && retry && attempt == 0 && ctx.Err() == nil {
			// The connection failed before the command started (the
			// session could not be opened): it is dead. Drop it and try
			// once more on a fresh one.
			e.lost(h, c, err)
			continue
		}
		return out, err
	}
}

// Dial opens a connection from the VM, forwarded over its SSH connection:
// network "tcp" reaches host:port as the VM sees it (127.0.0.1 is the VM
// itself), "unix" a socket path on the VM. sshd must allow the forwarding
// (OpenSSH's AllowTcpForwarding and AllowStreamLocalForwarding, both yes
// by default). Nothing runs on the VM: sshd connects on the login user's
// behalf, with that user's permissions. A refused forwarding is a
// *ConnError with Op "forward"; a dead connection is dialled again once.
func (e *SSHExecutor) Dial(ctx context.Context, vm, network, addr string) (net.Conn, error) {
	h := e.hosts[vm]
	if h == nil {
		return nil, fmt.Errorf("ssh %s: unknown VM", vm)
	}
	failed := func(err error) error {
		return &ConnError{VM: h.Name, Address: h.addr, Op: "forward", Err: fmt.Errorf("%s %s: %w", network, addr, err)}
	}
	for attempt := 0; ; attempt++ {
		c, err := e.conn(ctx, h)
		if err != nil {
			return nil, err
		}
		conn, err := c.client.DialContext(ctx, network, addr)
		var oce *ssh.OpenChannelError
		switch {
		case err == nil:
			return conn, nil
		case ctx.Err() != nil:
			return nil, failed(ctx.Err())
		case errors.As(err, &oce), attempt > 0:
			// sshd refused this channel (forwarding not allowed, nothing
			// listening: the connection itself is fine), or a fresh
			// connection failed too.
			return nil, failed(err)
		}
		e.lost(h, c, err)
	}
}

// lost drops a connection found dead, so that the next use dials again.
func (e *SSHExecutor) lost(h *sshHost, c *sshConn, err error) {
	e.log.Info("ssh connection lost, reconnecting", "vm", h.Name, "err", err)
	c.client.Close()
	h.drop(c)
}

// conn returns the VM's live connection, dialling one if needed.
func (e *SSHExecutor) conn(ctx context.Context, h *sshHost) (*sshConn, error) {
	if c := h.current(); c != nil {
		return c, nil
	}
	select {
	case h.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, &ConnError{VM: h.Name, Address: h.addr, Op: "dial", Err: ctx.Err()}
	}
	defer func() { <-h.dialing }()
	if c := h.current(); c != nil { // another caller dialled meanwhile
		return c, nil
	}
	if e.closed.Load() {
		return nil, fmt.Errorf("ssh %s: executor closed", h.Name)
	}
	client, err := e.dial(ctx, h)
	if err != nil {
		return nil, err
	}
	c := &sshConn{client: client, done: make(chan struct{})}
	h.mu.Lock()
	if e.closed.Load() {
		h.mu.Unlock()
		client.Close()
		return nil, fmt.Errorf("ssh %s: executor closed", h.Name)
	}
	h.conn = c
	h.mu.Unlock()
	e.dials.Add(1)
	e.log.Debug("ssh connected", "vm", h.Name, "addr", h.addr)
	go func() {
		err := client.Wait()
		close(c.done)
		h.drop(c)
		e.log.Debug("ssh connection closed", "vm", h.Name, "err", err)
	}()
	if e.cfg.KeepaliveInterval > 0 {
		go e.keepalive(h, c)
	}
	return c, nil
}

func (h *sshHost) current() *sshConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil && h.conn.alive() {
		return h.conn
	}
	return nil
}

func (h *sshHost) drop(c *sshConn) {
	h.mu.Lock()
	if h.conn == c {
		h.conn = nil
	}
	h.mu.Unlock()
}

// keepalive sends keepalive@openssh.com every interval and closes the
// connection when one fails or gets no answer in time.
func (e *SSHExecutor) keepalive(h *sshHost, c *sshConn) {
	t := time.NewTicker(e.cfg.KeepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		errc := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			errc <- err
		}()
		timer := time.NewTimer(e.cfg.KeepaliveTimeout)
		select {
		case err := <-errc:
			timer.Stop()
			if err != nil {
				e.log.Warn("ssh keepalive failed, closing connection", "vm", h.Name, "err", err)
				c.client.Close()
				return
			}
		case <-timer.C:
			e.log.Warn("ssh keepalive unanswered, closing connection", "vm", h.Name, "timeout", e.cfg.KeepaliveTimeout)
			c.client.Close()
			return
		case <-c.done:
			timer.Stop()
			return
		}
	}
}

// dial connects and authenticates, bounded by ctx and ConnectTimeout.
func (e *SSHExecutor) dial(ctx context.Context, h *sshHost) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ConnectTimeout)
	defer cancel()
	connErr := func(op string, err error) error {
		return &ConnError{VM: h.Name, Address: h.addr, Op: op, Err: err}
	}

	var known ssh.HostKeyCallback
	if h.HostKeyFingerprint == "" {
		var err error
		if known, err = knownhosts.New(e.cfg.KnownHostsFiles...); err != nil {
			return nil, connErr("known_hosts", err)
		}
	}
	auth, closeAgent, err := e.auth()
	if err != nil {
		return nil, connErr("auth", err)
	}
	defer closeAgent()

	// With known_hosts, ask the server for the key types it lists. If the
	// server has none of them, dial once more unrestricted, so that the
	// refusal names the key it does offer (a changed key).
	restrict := known != nil
	for {
		client, err := e.handshake(ctx, h, auth, known, restrict)
		var ane *ssh.AlgorithmNegotiationError
		if restrict && errors.As(err, &ane) && ane.What == "host key" {
			restrict = false
			continue
		}
		return client, err
	}
}

func (e *SSHExecutor) handshake(ctx context.Context, h *sshHost, auth ssh.AuthMethod, known ssh.HostKeyCallback, restrict bool) (*ssh.Client, error) {
	connErr := func(op string, err error) error {
		return &ConnError{VM: h.Name, Address: h.addr, Op: op, Err: err}
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, connErr("dial", err)
	}
	// The handshake has no context of its own: closing the socket when
	// ctx ends interrupts it.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	cfg := &ssh.ClientConfig{
		User:            h.User,
		Auth:            []ssh.AuthMethod{auth},
		HostKeyCallback: e.hostKeyCallback(h, known),
		Timeout:         e.cfg.ConnectTimeout,
	}
	if restrict {
		cfg.HostKeyAlgorithms = e.knownAlgorithms(known, h, nc.RemoteAddr())
	}
	if cfg.HostKeyAlgorithms == nil {
		// A pin, an unknown host, or none of the known types offered:
		// prefer what OpenSSH prefers, so that the fingerprint we pin or
		// report is the one `ssh` and `ssh-keyscan` show.
		cfg.HostKeyAlgorithms = openSSHHostKeyAlgorithms
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, h.addr, cfg)
	stopped := stop()
	if err != nil {
		nc.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		if !stopped && ctx.Err() != nil {
			return nil, connErr("handshake", ctx.Err())
		}
		return nil, connErr("handshake", err)
	}
	if !stopped { // ctx ended just as the handshake finished
		sc.Close()
		return nil, connErr("handshake", ctx.Err())
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// auth returns one publickey method offering the key files' keys, then
// the agent's. (The ssh package tries each method name once, so all keys
// must sit in one method.)
func (e *SSHExecutor) auth() (ssh.AuthMethod, func(), error) {
	signers := append([]ssh.Signer(nil), e.signers...)
	closeAgent := func() {}
	if e.cfg.UseAgent && e.cfg.AgentSocket != "" {
		ac, err := net.Dial("unix", e.cfg.AgentSocket)
		if err != nil {
			if len(signers) == 0 {
				return nil, closeAgent, fmt.Errorf("ssh-agent: %w", err)
			}
			e.log.Warn("ssh-agent unreachable, using key files only", "err", err)
		} else {
			closeAgent = func() { ac.Close() }
			as, err := agent.NewClient(ac).Signers()
			if err != nil && len(signers) == 0 {
				closeAgent()
				return nil, func() {}, fmt.Errorf("ssh-agent: %w", err)
			}
			signers = append(signers, as...)
		}
	}
	if len(signers) == 0 {
		closeAgent()
		return nil, func() {}, errors.New("no private key: key files and ssh-agent offer none")
	}
	return ssh.PublicKeys(signers...), closeAgent, nil
}

// openSSHHostKeyAlgorithms is the host key preference of OpenSSH's client
// (ed25519 first; the ssh package alone would prefer ECDSA).
var openSSHHostKeyAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// knownAlgorithms asks known_hosts which key types it holds for the host
// (by offering it a random key), so that the server is asked for a key
// type we can verify. Without this, a server with several host keys may
// offer one known_hosts does not list, which would look like a changed
// key. Returns nil (the defaults) when the host is unknown.
func (e *SSHExecutor) knownAlgorithms(known ssh.HostKeyCallback, h *sshHost, remote net.Addr) []string {
	var ke *knownhosts.KeyError
	if err := known(h.addr, remote, e.probe); !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		default:
			add(t)
		}
	}
	return algos
}

// hostKeyCallback verifies the server's key against the VM's pin or the
// known_hosts files; every refusal is a *HostKeyError.
func (e *SSHExecutor) hostKeyCallback(h *sshHost, known ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		herr := &HostKeyError{VM: h.Name, Address: h.addr, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key)}
		if h.HostKeyFingerprint != "" {
			if strings.TrimRight(h.HostKeyFingerprint, "=") == herr.Fingerprint {
				return nil
			}
			herr.Problem = HostKeyPinMismatch
			herr.Want = []string{h.HostKeyFingerprint}
			return herr
		}
		err := known(hostname, remote, key)
		if err == nil {
			return nil
		}
		herr.Err = err
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			herr.Problem = HostKeyRevoked
		case errors.As(err, &ke) && len(ke.Want) == 0:
			herr.Problem = HostKeyUnknown
		case errors.As(err, &ke):
			herr.Problem = HostKeyChanged
			for _, w := range ke.Want {
				herr.Want = append(herr.Want, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
			}
		default:
			herr.Problem = HostKeyProblem(err.Error())
		}
		return herr
	}
}

// runOn runs one command in a new session of c. retry reports that the
// connection failed before the command could start (the session could not
// be opened), so running it again on a new connection is safe.
func (e *SSHExecutor) runOn(ctx context.Context, h *sshHost, c *sshConn, argv []string, cmd string, stdin io.Reader) (out []byte, retry bool, err error) {
	ctxErr := func() error {
		return fmt.Errorf("ssh %s: `%s`: %w", h.Name, cmd, ctx.Err())
	}
	select {
	case h.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctxErr()
	}
	defer func() { <-h.sessions }()

	sess, err := newSession(ctx, c.client)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctxErr()
		}
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			// The server refused the session but the connection is fine:
			// not a reason to reconnect.
			return nil, false, &ConnError{VM: h.Name, Address: h.addr, Op: "session", Err: err}
		}
		return nil, true, &ConnError{VM: h.Name, Address: h.addr, Op: "session", Err: err}
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	pw := &pidWriter{w: &tailWriter{buf: &stderr, max: 4 * maxStderr}}
	sess.Stdout = &stdout
	sess.Stderr = pw
	sess.Stdin = stdin
	// The login shell writes its pid (which sshd made a process group
	// leader) to stderr, then becomes the command. pidWriter takes that
	// line out again. With the pid, a cancelled command can be killed even
	// where sshd ignores signal requests (root logins).
	if err := sess.Start(pidPrefix + cmd); err != nil {
		return nil, false, &ConnError{VM: h.Name, Address: h.addr, Op: "start", Err: err}
	}
	waitc := make(chan error, 1)
	go func() { waitc <- sess.Wait() }()
	select {
	case err = <-waitc:
	case <-ctx.Done():
		// sshd honours signal requests only under privilege separation
		// (not for root logins), so also kill the process group through
		// a second session.
		_ = sess.Signal(ssh.SIGKILL)
		if pid := pw.pid(); pid > 1 {
			select {
			case <-waitc:
			default:
				e.killRemote(h, c, pid)
			}
		}
		sess.Close()
		select {
		case <-waitc:
		case <-time.After(killGrace):
			// The session does not close: the connection is stuck.
			e.log.Warn("ssh session did not close after SIGKILL, closing connection", "vm", h.Name)
			c.client.Close()
		}
		return nil, false, ctxErr()
	}
	pw.flush()
	if err == nil {
		return stdout.Bytes(), false, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		ce := &CommandError{VM: h.Name, Argv: argv, ExitStatus: ee.ExitStatus(), Signal: ee.Signal(), Stderr: trimStderr(stderr.Bytes())}
		if ce.Signal != "" {
			ce.ExitStatus = -1
		}
		return stdout.Bytes(), false, ce
	}
	return stdout.Bytes(), false, &ConnError{VM: h.Name, Address: h.addr, Op: "run", Err: fmt.Errorf("`%s`: %w (stderr: %s)", cmd, err, trimStderr(stderr.Bytes()))}
}

// pidPrefix makes the remote login shell report its pid on stderr before
// it execs the command (same pid, same process group).
const pidPrefix = `printf 'pgaf-pid %d\n' "$$" >&2; exec `

// killRemote kills a cancelled command's process group, through a second
// session on the same connection, within killGrace.
func (e *SSHExecutor) killRemote(h *sshHost, c *sshConn, pid int) {
	ctx, cancel := context.WithTimeout(context.Background(), killGrace)
	defer cancel()
	sess, err := newSession(ctx, c.client)
	if err != nil {
		e.log.Warn("ssh: cannot open a session to kill a cancelled command", "vm", h.Name, "pid", pid, "err", err)
		return
	}
	defer sess.Close()
	p := strconv.Itoa(pid)
	done := make(chan error, 1)
	go func() {
		done <- sess.Run("kill -KILL -" + p + " 2>/dev/null || kill -KILL " + p + " 2>/dev/null; true")
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		e.log.Warn("ssh: killing a cancelled command failed", "vm", h.Name, "pid", pid, "err", err)
	}
}

// pidWriter strips the "pgaf-pid N" line that pidPrefix writes first on
// stderr and remembers N; everything else goes to w.
type pidWriter struct {
	w     io.Writer
	mu    sync.Mutex
	done  bool
	head  []byte
	value int
}

func (p *pidWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return p.w.Write(b)
	}
	n := len(b)
	p.head = append(p.head, b...)
	i := bytes.IndexByte(p.head, '\n')
	if i < 0 && len(p.head) < 64 {
		p.mu.Unlock()
		return n, nil // wait for the rest of the first line
	}
	p.done = true
	rest := p.head
	if i >= 0 {
		if v, ok := strings.CutPrefix(string(p.head[:i]), "pgaf-pid "); ok {
			if pid, err := strconv.Atoi(v); err == nil {
				p.value = pid
				rest = p.head[i+1:]
			}
		}
	}
	p.head = nil
	p.mu.Unlock()
	if len(rest) > 0 {
		if _, err := p.w.Write(rest); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// flush passes on a first line that never ended (the shell wrote no pid
// line, or a short one without a newline).
func (p *pidWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done && len(p.head) > 0 {
		_, _ = p.w.Write(p.head)
	}
	p.done, p.head = true, nil
}

func (p *pidWriter) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.value
}

// newSession opens a session, giving up when ctx ends (a session that
// opens later is closed).
func newSession(ctx context.Context, client *ssh.Client) (*ssh.Session, error) {
	type result struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := client.NewSession()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.s != nil {
				r.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// tailWriter keeps at most the last max bytes written (roughly: it drops
// the oldest half when full).
type tailWriter struct {
	buf *bytes.Buffer
	max int
}

func (w *tailWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > w.max {
		p = p[len(p)-w.max:]
	}
	if w.buf.Len()+len(p) > w.max {
		keep := w.buf.Bytes()[w.buf.Len()-min(w.buf.Len(), w.max-len(p)):]
		nb := append([]byte(nil), keep...)
		w.buf.Reset()
		w.buf.Write(nb)
	}
	w.buf.Write(p)
	return n, nil
}

// Close closes every connection. Commands running on them fail.
func (e *SSHExecutor) Close() error {
	e.closed.Store(true)
	var errs []error
	for _, h := range e.hosts {
		h.mu.Lock()
		c := h.conn
		h.conn = nil
		h.mu.Unlock()
		if c != nil {
			if err := c.client.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("ssh %s: close: %w", h.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
