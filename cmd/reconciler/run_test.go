package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// TestRunVerbServesAndStops runs the verb in-process on a real git
// repository whose VMs refuse connections (loopback ports nobody listens
// on): /status reports the blocked plan with the commit, SIGHUP starts a
// run, and cancelling the context (SIGTERM) stops it cleanly.
func TestRunVerbServesAndStops(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	gitRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	gitRun("init", "-q", "-b", "main")
	refused := freeLoopbackPort(t)
	desiredText := fmt.Sprintf(`vms:
  - {name: vm1, address: 127.0.0.1, ssh: {user: ops, port: %d}}
  - {name: vm2, address: 127.0.0.2, ssh: {user: ops, port: %d}}
clusters:
  - name: c
    image: img:1
    monitor: {vm: vm1, port: %d}
    nodes:
      - {name: node1, vm: vm1, port: 6433}
      - {name: node2, vm: vm2, port: 6434}
`, refused, refused, refused+1)
	if err := os.WriteFile(filepath.Join(repo, "desired.yaml"), []byte(desiredText), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun("add", "desired.yaml")
	gitRun("commit", "-qm", "one")
	sha := gitRun("rev-parse", "HEAD")
	key := filepath.Join(dir, "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Skipf("ssh-keygen: %v %s", err, out)
	}
	port := freeLoopbackPort(t)
	cfg := filepath.Join(dir, "cfg.yaml")
	text := fmt.Sprintf(`ssh: {private_keys: [key], known_hosts: [kh], connect_timeout: 1s}
observe_timeout: 2s
source: {git: {url: "file://%s", cache_dir: cache}}
run: {interval: 1h, wait_retry: 1h}
http: {listen: "127.0.0.1:%d"}
lock: {kind: file, dir: locks}
log: {format: json}
`, repo, port)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kh"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "--config", cfg}, io.Discard, &stderr) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	status := func() map[string]any {
		resp, err := http.Get(base + "/status")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	waitRun := func(trigger string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if m := status(); m != nil {
				if lr, ok := m["last_run"].(map[string]any); ok && lr["trigger"] == trigger {
					return m
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no %s run; log:\n%s", trigger, stderr.String())
		return nil
	}
	m := waitRun("start")
	if m["reason"] != "Blocked" || m["in_force"].(map[string]any)["commit"] != sha {
		t.Errorf("status %v %v %v", m["reason"], m["in_force"], m["message"])
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitRun("sighup")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	if !strings.Contains(stderr.String(), `"commit":"`+sha+`"`) {
		t.Errorf("no log line carries the commit:\n%s", stderr.String())
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
