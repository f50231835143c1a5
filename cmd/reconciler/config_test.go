package main

import (
	"strings"
	"testing"
	"time"
)

func TestReadConfigExample(t *testing.T) {
	c, err := loadConfig("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(c.Desired, "/examples/cluster.yaml") || c.ObserveTimeout.Duration != 10*time.Second || c.Log.Format != "text" {
		t.Errorf("unexpected config: %+v", c)
	}
}

func TestReadConfigErrors(t *testing.T) {
	cases := map[string]string{
		"unknown_key":    "desired: x\nssh: {agent: true}\nbogus: 1\n",
		"bad_duration":   "ssh: {agent: true}\nobserve_timeout: soon\n",
		"bad_log_format": "ssh: {agent: true}\nlog: {format: xml}\n",
		"no_ssh_auth":    "desired: x\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := readConfig(strings.NewReader(text), "/tmp"); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
