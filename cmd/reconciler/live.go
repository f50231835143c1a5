package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"time"

	"github.com/lmittmann/tint"
	"github.com/pgaf-gitops/reconciler/actuators"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/service"
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
// state, and the engine that reaches the VMs and monitors (the one the
// run service uses too).
type session struct {
	cfg    config
	st     *desired.State
	engine *service.LiveEngine
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
	return &session{cfg: cfg, st: st, engine: cfg.liveEngine(log), log: log}, nil
}

func (s *session) Close() error { return s.engine.Close() }

func (s *session) observe(ctx context.Context) (*observe.Observation, error) {
	return s.engine.Observe(ctx, s.st)
}

// liveEngine is the engine the configuration describes: SSH settings and
// the observation timeout.
func (c config) liveEngine(log *slog.Logger) *service.LiveEngine {
	return &service.LiveEngine{
		SSH: actuators.SSHConfig{
			KeyFiles:          c.SSH.PrivateKeys,
			UseAgent:          c.SSH.Agent,
			KnownHostsFiles:   c.SSH.KnownHosts,
			ConnectTimeout:    c.SSH.ConnectTimeout.Duration,
			KeepaliveInterval: c.SSH.KeepaliveInterval.Duration,
		},
		ObserveTimeout: c.ObserveTimeout.Duration,
		Log:            log,
	}
}

func newLogger(w io.Writer, c logConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}))
}
