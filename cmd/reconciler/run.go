package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pgaf-gitops/reconciler/service"
	"github.com/pgaf-gitops/reconciler/source"
)

// runOptions are the flags of `run`.
type runOptions struct {
	live      liveFlags
	dryRun    bool
	listen    string
	logFormat string
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "[--config FILE] [--desired PATH] [--dry-run] [--listen ADDR] [--log-format text|json]",
		"The continuous service: fetch the desired state (git, or a local path watched for\n"+
			"changes), validate, observe, plan and apply, on an interval with jitter and at once\n"+
			"on a webhook, a change, or SIGHUP. SIGINT or SIGTERM stops after the current step.\n"+
			"Serves /healthz, /readyz, /metrics, /status and a status page.")
	var o runOptions
	o.live.register(fs)
	fs.BoolVar(&o.dryRun, "dry-run", false, "observe and plan on every trigger, report drift, never act")
	fs.StringVar(&o.listen, "listen", "", "HTTP listen address (overrides http.listen)")
	fs.StringVar(&o.logFormat, "log-format", "", "text or json (overrides log.format)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &usageError{fs: fs, msg: "run takes no arguments"}
	}
	cfg, err := loadConfig(o.live.config)
	if err != nil {
		return err
	}
	if o.live.desired != "" {
		cfg.Desired = o.live.desired
	}
	if o.listen != "" {
		cfg.HTTP.Listen = o.listen
	}
	if o.logFormat != "" {
		if o.logFormat != "text" && o.logFormat != "json" {
			return &usageError{fs: fs, msg: "--log-format must be text or json"}
		}
		cfg.Log.Format = o.logFormat
	}
	log := newLogger(stderr, cfg.Log)

	src, err := newSource(cfg)
	if err != nil {
		return err
	}
	instance := cfg.Run.Instance
	if instance == "" {
		host, _ := os.Hostname()
		instance = fmt.Sprintf("pgaf-reconciler@%s:%d", host, os.Getpid())
	}
	var lock service.Locker = service.NoLock{}
	switch cfg.Lock.Kind {
	case "monitor":
		lock = service.NewMonitorLock(instance)
	case "file":
		lock = service.NewFileLock(cfg.Lock.Dir, instance)
	}
	var secret []byte
	if cfg.Webhook.SecretFile != "" {
		b, err := os.ReadFile(cfg.Webhook.SecretFile)
		if err != nil {
			return fmt.Errorf("webhook secret: %w", err)
		}
		secret = []byte(strings.TrimSpace(string(b)))
		if len(secret) == 0 {
			return fmt.Errorf("webhook secret %s is empty", cfg.Webhook.SecretFile)
		}
	} else {
		log.Warn("no webhook.secret_file: the webhook is disabled (404)")
	}
	engine := cfg.liveEngine(log)
	defer func() {
		if err := engine.Close(); err != nil {
			log.Warn("closing SSH connections", "err", err)
		}
	}()
	svc, err := service.New(service.Config{
		Source:        src,
		Engine:        engine,
		Lock:          lock,
		Interval:      cfg.Run.Interval.Duration,
		Jitter:        cfg.Run.Jitter,
		BackoffMin:    cfg.Run.BackoffMin.Duration,
		BackoffMax:    cfg.Run.BackoffMax.Duration,
		WaitRetry:     cfg.Run.WaitRetry.Duration,
		Debounce:      cfg.Source.Debounce.Duration,
		DryRun:        o.dryRun,
		Instance:      instance,
		WebhookSecret: secret,
		Log:           log,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return &hintError{err: fmt.Errorf("http: %w", err), hint: "set http.listen or --listen to a free address"}
	}
	srv := &http.Server{Handler: svc.Handler(cfg.Webhook.Path), ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "source", src.String(), "dry_run", o.dryRun, "instance", instance, "lock", cfg.Lock.Kind)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reconcile now")
				svc.Trigger("sighup")
			}
		}
	}()

	runErr := svc.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := <-httpErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	log.Info("stopped")
	return runErr
}

// newSource is the git source when source.git.url is set, else the local
// desired path (watched).
func newSource(cfg config) (source.Source, error) {
	g := cfg.Source.Git
	if g.URL != "" {
		return source.NewGit(source.GitConfig{
			URL: g.URL, Branch: g.Branch, Tag: g.Tag, Commit: g.Commit, Path: g.Path,
			CacheDir: g.CacheDir, SSHKeyFile: g.SSHKey, SSHKnownHosts: g.SSHKnownHosts,
			TokenFile: g.TokenFile, TokenEnv: g.TokenEnv, Username: g.Username,
			FetchTimeout: g.FetchTimeout.Duration, Keyring: g.VerifyKeyring, AllowRollback: g.AllowRollback,
		})
	}
	if cfg.Desired == "" {
		return nil, &hintError{err: errors.New("no desired state"), hint: "set source.git.url, or desired (a local path), in the configuration, or pass --desired PATH"}
	}
	return source.NewDir(cfg.Desired)
}
