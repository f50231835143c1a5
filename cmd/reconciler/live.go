package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"github.com/pgaf-gitops/reconciler/actuators"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// liveFlags are the options of every verb that reaches the VMs.
type liveFlags struct {
	config  string
	desired string
}

func (l *liveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.config, "config", "reconciler.yaml", "the reconciler's configuration file (see config.example.yaml)")
	fs.StringVar(&l.desired, "desired", "", "desired-state file or directory (overrides the configuration's desired)")
}

// session is what a live verb works with: the configuration, the desired
// state, and the connections to the VMs.
type session struct {
	cfg    config
	st     *desired.State
	ssh    *actuators.SSHExecutor
	docker *actuators.Docker
	log    *slog.Logger
}

func openSession(l liveFlags, stderr io.Writer) (*session, error) {
	cfg, err := loadConfig(l.config)
	if err != nil {
		return nil, err
	}
	if l.desired != "" {
		cfg.Desired = l.desired
	}
	if cfg.Desired == "" {
		return nil, &hintError{err: errors.New("no desired state"), hint: "set desired in the configuration or pass --desired PATH"}
	}
	st, err := desired.Load(cfg.Desired)
	if err != nil {
		return nil, &hintError{err: err, hint: "run `reconciler validate " + cfg.Desired + "` for the full list"}
	}
	log := newLogger(stderr, cfg.Log)
	ex, err := actuators.NewSSHExecutor(actuators.SSHConfig{
		KeyFiles:          cfg.SSH.PrivateKeys,
		UseAgent:          cfg.SSH.Agent,
		KnownHostsFiles:   cfg.SSH.KnownHosts,
		ConnectTimeout:    cfg.SSH.ConnectTimeout.Duration,
		KeepaliveInterval: cfg.SSH.KeepaliveInterval.Duration,
		Logger:            log,
	}, actuators.HostsFromDesired(st))
	if err != nil {
		return nil, fmt.Errorf("ssh: %w", err)
	}
	return &session{cfg: cfg, st: st, ssh: ex, docker: actuators.NewDocker(ex), log: log}, nil
}

func (s *session) Close() error { return s.ssh.Close() }

func (s *session) observe(ctx context.Context) *observe.Observation {
	return observe.Observe(ctx, s.st, s.ssh, observe.Options{Timeout: s.cfg.ObserveTimeout.Duration})
}

func newLogger(w io.Writer, c logConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}))
}

var _ = os.Stderr
