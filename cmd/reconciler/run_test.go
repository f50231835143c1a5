package main

import (
	"strings"
	"testing"
	"time"
)

func TestReadConfigRunParts(t *testing.T) {
	text := `desired: d.yaml
ssh: {agent: true}
source:
  git: {url: "file:///srv/repo", branch: prod, path: clusters, cache_dir: cache, ssh_known_hosts: [kh], verify_keyring: ring.asc, fetch_timeout: 5s}
  debounce: 1s
run: {interval: 30s, jitter: 0.2, backoff_min: 1s, backoff_max: 1m, wait_retry: 5s, instance: a}
http: {listen: "127.0.0.1:0"}
webhook: {path: /hook, secret_file: secret}
lock: {kind: file, dir: locks}
`
	dir := t.TempDir()
	c, err := readConfig(strings.NewReader(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	g := c.Source.Git
	if g.CacheDir != dir+"/cache" || g.SSHKnownHosts[0] != dir+"/kh" || g.VerifyKeyring != dir+"/ring.asc" ||
		c.Webhook.SecretFile != dir+"/secret" || c.Lock.Dir != dir+"/locks" {
		t.Errorf("relative paths not resolved: %+v %+v %+v", g, c.Webhook, c.Lock)
	}
	if c.Run.Interval.Duration != 30*time.Second || c.Run.Jitter != 0.2 || g.FetchTimeout.Duration != 5*time.Second ||
		c.Source.Debounce.Duration != time.Second || c.Lock.Kind != "file" || c.Webhook.Path != "/hook" {
		t.Errorf("values: %+v", c)
	}
	src, err := newSource(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(src.String(), "branch prod") {
		t.Errorf("source %s", src)
	}
}

func TestReadConfigRunErrors(t *testing.T) {
	cases := map[string]string{
		"git_without_cache": "ssh: {agent: true}\nsource: {git: {url: file:///x}}\n",
		"git_field_no_url":  "ssh: {agent: true}\nsource: {git: {tag: v1}}\n",
		"jitter_too_big":    "ssh: {agent: true}\nrun: {jitter: 1.5}\n",
		"backoff_inverted":  "ssh: {agent: true}\nrun: {backoff_min: 1m, backoff_max: 1s}\n",
		"bad_lock_kind":     "ssh: {agent: true}\nlock: {kind: etcd}\n",
		"webhook_path":      "ssh: {agent: true}\nwebhook: {path: hook}\n",
		"unknown_run_field": "ssh: {agent: true}\nrun: {intervall: 1m}\n",
		"bad_fetch_timeout": "ssh: {agent: true}\nsource: {git: {fetch_timeout: soon}}\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := readConfig(strings.NewReader(text), "/tmp"); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
