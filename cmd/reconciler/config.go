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
