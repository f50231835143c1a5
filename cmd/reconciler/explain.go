package main

import (
	"context"
	"fmt"
	"io"

	"github.com/pgaf-gitops/reconciler/reconcile"
)

type explainOptions struct {
	live        liveFlags
	node        string
	cluster     string
	observation string
	output      string
}

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", "NODE [--cluster NAME] [--config FILE] [--desired PATH] [--observation FILE] [--output text|json]",
		"Print everything the reconciler knows of one node and why it plans what it plans:\nthe node as desired and as observed, the plan's actions for it with their reasons\nand evidence, its blocked changes, and every guard evaluated for it with its outcome.")
	var o explainOptions
	o.live.register(fs)
	fs.StringVar(&o.cluster, "cluster", "", "the node's cluster (default: the one cluster that has such a node)")
	fs.StringVar(&o.observation, "observation", "", "explain against the observation JSON `FILE` written by reconciler observe, instead of observing live")
	fs.StringVar(&o.output, "output", "text", "text or json")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	// NODE may come before the options: parse what follows it too.
	if fs.NArg() > 0 {
		o.node = fs.Arg(0)
		if err := parse(fs, fs.Args()[1:], stdout); err != nil {
			return err
		}
	}
	if o.node == "" || fs.NArg() != 0 {
		return &usageError{fs: fs, msg: "explain takes exactly one NODE"}
	}
	if o.output != "text" && o.output != "json" {
		return &usageError{fs: fs, msg: fmt.Sprintf("--output must be text or json, not %q", o.output)}
	}
	st, obs, err := loadInputs(ctx, o.live, o.observation, stderr)
	if err != nil {
		return err
	}
	e, err := reconcile.Explain(st, obs, o.cluster, o.node)
	if err != nil {
		if o.cluster == "" && len(st.Clusters) > 1 {
			return &hintError{err: err, hint: "--cluster NAME chooses the cluster"}
		}
		return err
	}
	if o.output == "json" {
		return e.WriteJSON(stdout)
	}
	return e.WriteText(stdout)
}
