package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// config is the reconciler's own configuration (config.example.yaml
// documents every field). Secrets never sit in the desired state: key
// files and known_hosts are paths here.
type config struct {
	// Desired is the desired-state file or directory.
	Desired string    `yaml:"desired"`
	SSH     sshConfig `yaml:"ssh"`
	// ObserveTimeout bounds the observation of each VM and each monitor.
	ObserveTimeout duration  `yaml:"observe_timeout"`
	Log            logConfig `yaml:"log"`
	// The parts used by `run`, the continuous service.
	Source  sourceConfig  `yaml:"source"`
	Run     runConfig     `yaml:"run"`
	HTTP    httpConfig    `yaml:"http"`
	Webhook webhookConfig `yaml:"webhook"`
	Lock    lockConfig    `yaml:"lock"`
}

// sourceConfig says where `run` takes the desired state from: a git
// repository, or (when Git.URL is empty) the local path in desired,
// watched for changes.
type sourceConfig struct {
	Git gitConfig `yaml:"git"`
	// Debounce is the quiet time after a change in the watched local path.
	Debounce duration `yaml:"debounce"`
}

type gitConfig struct {
	URL           string   `yaml:"url"`
	Branch        string   `yaml:"branch"`
	Tag           string   `yaml:"tag"`
	Commit        string   `yaml:"commit"`
	Path          string   `yaml:"path"`
	CacheDir      string   `yaml:"cache_dir"`
	SSHKey        string   `yaml:"ssh_key"`
	SSHKnownHosts []string `yaml:"ssh_known_hosts"`
	TokenFile     string   `yaml:"token_file"`
	TokenEnv      string   `yaml:"token_env"`
	Username      string   `yaml:"username"`
	FetchTimeout  duration `yaml:"fetch_timeout"`
	// VerifyKeyring turns commit verification on.
	VerifyKeyring string `yaml:"verify_keyring"`
	// AllowRollback accepts a signed head older than the last trusted one.
	AllowRollback bool `yaml:"allow_rollback"`
}

type runConfig struct {
	Interval   duration `yaml:"interval"`
	Jitter     float64  `yaml:"jitter"`
	BackoffMin duration `yaml:"backoff_min"`
	BackoffMax duration `yaml:"backoff_max"`
	WaitRetry  duration `yaml:"wait_retry"`
	Instance   string   `yaml:"instance"`
}

type httpConfig struct {
	Listen string `yaml:"listen"`
}

type webhookConfig struct {
	Path       string `yaml:"path"`
	SecretFile string `yaml:"secret_file"`
}

type lockConfig struct {
	Kind string `yaml:"kind"` // monitor, file or none
	Dir  string `yaml:"dir"`  // for kind file
}

type sshConfig struct {
	PrivateKeys       []string `yaml:"private_keys"`
	Agent             bool     `yaml:"agent"`
	KnownHosts        []string `yaml:"known_hosts"`
	ConnectTimeout    duration `yaml:"connect_timeout"`
	KeepaliveInterval duration `yaml:"keepalive_interval"`
}

type logConfig struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

type duration struct{ time.Duration }

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 10s, 1m)", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// defaultConfig is the configuration when no file is given.
func defaultConfig() config {
	return config{
		SSH:            sshConfig{ConnectTimeout: duration{10 * time.Second}, KeepaliveInterval: duration{15 * time.Second}},
		ObserveTimeout: duration{10 * time.Second},
		Log:            logConfig{Format: "text", Level: "info"},
		Source: sourceConfig{
			Git:      gitConfig{FetchTimeout: duration{30 * time.Second}},
			Debounce: duration{300 * time.Millisecond},
		},
		Run: runConfig{Interval: duration{time.Minute}, Jitter: 0.1, BackoffMin: duration{2 * time.Second},
			BackoffMax: duration{5 * time.Minute}, WaitRetry: duration{10 * time.Second}},
		HTTP:    httpConfig{Listen: "127.0.0.1:9475"},
		Webhook: webhookConfig{Path: "/webhook"},
		Lock:    lockConfig{Kind: "monitor", Dir: "/run/pgaf-reconciler"},
	}
}

// readConfig reads a configuration strictly (unknown keys are errors),
// resolves its relative paths against the file's directory, and checks it.
func readConfig(r io.Reader, dir string) (config, error) {
	c := defaultConfig()
	b, err := io.ReadAll(r)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, err
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		if strings.HasPrefix(p, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				return filepath.Join(home, p[2:])
			}
		}
		return filepath.Join(dir, p)
	}
	c.Desired = abs(c.Desired)
	for i := range c.SSH.PrivateKeys {
		c.SSH.PrivateKeys[i] = abs(c.SSH.PrivateKeys[i])
	}
	for i := range c.SSH.KnownHosts {
		c.SSH.KnownHosts[i] = abs(c.SSH.KnownHosts[i])
	}
	g := &c.Source.Git
	for _, p := range []*string{&g.CacheDir, &g.SSHKey, &g.TokenFile, &g.VerifyKeyring, &c.Webhook.SecretFile, &c.Lock.Dir} {
		*p = abs(*p)
	}
	for i := range g.SSHKnownHosts {
		g.SSHKnownHosts[i] = abs(g.SSHKnownHosts[i])
	}
	return c, c.check()
}

func (c *config) check() error {
	var errs []error
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format must be text or json, not %q", c.Log.Format))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level must be debug, info, warn or error, not %q", c.Log.Level))
	}
	if c.ObserveTimeout.Duration <= 0 {
		errs = append(errs, errors.New("observe_timeout must be positive"))
	}
	errs = append(errs, c.checkRun()...)
	if len(c.SSH.PrivateKeys) == 0 && !c.SSH.Agent {
		errs = append(errs, errors.New("ssh: give private_keys, or agent: true"))
	}
	return errors.Join(errs...)
}

// loadConfig reads the file at path.
func loadConfig(path string) (config, error) {
	f, err := os.Open(path)
	if err != nil {
		return defaultConfig(), &hintError{err: fmt.Errorf("config: %w", err), hint: "pass --config FILE; config.example.yaml documents every field"}
	}
	defer f.Close()
	dir, _ := filepath.Abs(filepath.Dir(path))
	c, err := readConfig(f, dir)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// checkRun checks the parts that `run` uses.
func (c *config) checkRun() []error {
	var errs []error
	g := c.Source.Git
	if g.URL != "" && g.CacheDir == "" {
		errs = append(errs, errors.New("source.git.cache_dir is required with source.git.url"))
	}
	if g.URL == "" && (g.Tag != "" || g.Commit != "" || g.Path != "" || g.VerifyKeyring != "") {
		errs = append(errs, errors.New("source.git: url is required when other git fields are set"))
	}
	if c.Run.Interval.Duration <= 0 {
		errs = append(errs, errors.New("run.interval must be positive"))
	}
	if c.Run.Jitter < 0 || c.Run.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("run.jitter must be in [0, 1), not %v", c.Run.Jitter))
	}
	if c.Run.BackoffMin.Duration <= 0 || c.Run.BackoffMax.Duration < c.Run.BackoffMin.Duration {
		errs = append(errs, errors.New("run.backoff_min must be positive and at most run.backoff_max"))
	}
	switch c.Lock.Kind {
	case "monitor", "none":
	case "file":
		if c.Lock.Dir == "" {
			errs = append(errs, errors.New("lock.dir is required with lock.kind file"))
		}
	default:
		errs = append(errs, fmt.Errorf("lock.kind must be monitor, file or none, not %q", c.Lock.Kind))
	}
	if c.Webhook.Path != "" && !strings.HasPrefix(c.Webhook.Path, "/") {
		errs = append(errs, fmt.Errorf("webhook.path must start with /, not %q", c.Webhook.Path))
	}
	return errs
}
