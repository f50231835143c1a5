package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
)

func runDSN(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dsn", "[--desired PATH | --config FILE] [--cluster NAME] [--target-session-attrs read-write] [--connect-timeout 2s] [--tcp-user-timeout 5s]",
		"Print the multi-host connection string of a cluster (libpq and pgx): every node with\nits own port; with target_session_attrs=read-write it always reaches the primary.\nconnect_timeout and tcp_user_timeout make a dead host or connection fail fast, so\nan application follows a failover as fast as the cluster does.")
	var l liveFlags
	l.register(fs)
	cluster := fs.String("cluster", "", "the cluster (default: the only one)")
	def := desired.DefaultDSNOptions()
	attrs := fs.String("target-session-attrs", def.TargetSessionAttrs, "read-write, any, read-only, primary, standby or prefer-standby")
	connect := fs.Duration("connect-timeout", def.ConnectTimeout, "connect_timeout: how long each host may take to answer (whole seconds, at least 2s for libpq; 0 leaves it out)")
	userTimeout := fs.Duration("tcp-user-timeout", def.TCPUserTimeout, "tcp_user_timeout: how long sent data may go unacknowledged before the connection is dropped (0 leaves it out)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	switch *attrs {
	case "read-write", "any", "read-only", "primary", "standby", "prefer-standby":
	default:
		return &usageError{fs: fs, msg: fmt.Sprintf("--target-session-attrs %q is not one libpq knows", *attrs)}
	}
	switch {
	case *connect < 0 || *userTimeout < 0:
		return &usageError{fs: fs, msg: "--connect-timeout and --tcp-user-timeout cannot be negative"}
	case *connect > 0 && *connect < 2*time.Second:
		return &usageError{fs: fs, msg: fmt.Sprintf("--connect-timeout %s: libpq takes 2s at least (it reads 1 as 2)", *connect)}
	case *connect%time.Second != 0:
		return &usageError{fs: fs, msg: fmt.Sprintf("--connect-timeout %s: connect_timeout is in whole seconds", *connect)}
	case *userTimeout%time.Millisecond != 0:
		return &usageError{fs: fs, msg: fmt.Sprintf("--tcp-user-timeout %s: tcp_user_timeout is in whole milliseconds", *userTimeout)}
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
	fmt.Fprintln(stdout, st.DSN(c, desired.DSNOptions{TargetSessionAttrs: *attrs, ConnectTimeout: *connect, TCPUserTimeout: *userTimeout}))
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
