package main

import (
	"context"
	"fmt"
	"io"

	"github.com/pgaf-gitops/reconciler/desired"
)

type validateOptions struct {
	path         string
	showDefaults bool
}

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", "[--show-defaults] PATH", "Check a desired-state file, or a directory of YAML files read as one desired state.\nExit 0 when valid, 1 when not; every problem is printed as FILE:LINE:COL: message.")
	var o validateOptions
	fs.BoolVar(&o.showDefaults, "show-defaults", false, "print the desired state with every default filled in")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{fs: fs, msg: "validate takes exactly one PATH"}
	}
	o.path = fs.Arg(0)
	st, err := desired.Load(o.path)
	if err != nil {
		return &hintError{err: err, hint: "fix the problems above; `reconciler validate --show-defaults PATH` shows the state with its defaults once it is valid"}
	}
	if o.showDefaults {
		return desired.Render(stdout, st)
	}
	n := 0
	for _, c := range st.Clusters {
		n += len(c.Nodes)
	}
	fmt.Fprintf(stdout, "%s: valid: %d VM(s), %d cluster(s), %d node(s)\n", o.path, len(st.VMs), len(st.Clusters), n)
	return nil
}
