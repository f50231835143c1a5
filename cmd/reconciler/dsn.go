package main

import (
	"context"
	"fmt"
	"io"

	"github.com/pgaf-gitops/reconciler/desired"
)

func runDSN(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dsn", "[--desired PATH | --config FILE] [--cluster NAME] [--target-session-attrs read-write]", "Print the libpq multi-host connection string of a cluster: every node with its own\nport; with target_session_attrs=read-write it always reaches the primary.")
	var l liveFlags
	l.register(fs)
	cluster := fs.String("cluster", "", "the cluster (default: the only one)")
	attrs := fs.String("target-session-attrs", "read-write", "read-write, any, read-only, primary, standby or prefer-standby")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	switch *attrs {
	case "read-write", "any", "read-only", "primary", "standby", "prefer-standby":
	default:
		return &usageError{fs: fs, msg: fmt.Sprintf("--target-session-attrs %q is not one libpq knows", *attrs)}
	}
	path := l.desired
	if path == "" {
		cfg, err := loadConfig(l.config)
		if err != nil {
			return err
		}
		path = cfg.Desired
	}
	st, err := desired.Load(path)
	if err != nil {
		return err
	}
	c, err := pickCluster(st, *cluster)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, st.DSN(c, *attrs))
	return nil
}

func pickCluster(st *desired.State, name string) (*desired.Cluster, error) {
	if name == "" {
		if len(st.Clusters) == 1 {
			return &st.Clusters[0], nil
		}
		return nil, &hintError{err: fmt.Errorf("the desired state has %d clusters", len(st.Clusters)), hint: "pass --cluster NAME"}
	}
	for i := range st.Clusters {
		if st.Clusters[i].Name == name {
			return &st.Clusters[i], nil
		}
	}
	return nil, fmt.Errorf("no cluster %q in the desired state", name)
}
