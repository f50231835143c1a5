// Command reconciler converges PostgreSQL high-availability clusters run by
// pg_auto_failover on plain VMs towards the desired state kept in git.
//
// main only wires signals and exit codes; every verb lives in its own file
// with its own flag set and options struct.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/pgaf-gitops/reconciler/desired"
)

// Exit codes, as `terraform plan -detailed-exitcode` uses them.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// verb is one subcommand.
type verb struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var verbs map[string]verb

func init() {
	verbs = map[string]verb{
		"validate": {"check the desired state; every problem as FILE:LINE:COL: message", runValidate},
		"plan":     {"show what apply would do (text, json or markdown); exit 2 when there are changes with --detailed-exitcode", runPlan},
		"apply":    {"converge once, step by step, with progress", runApply},
		"observe":  {"write one observation of every VM and monitor as JSON", runObserve},
		"status":   {"the monitor's and Docker's views joined in one table, and recent monitor events; --watch refreshes it", runStatus},
		"explain":  {"one node: as desired, as observed, what the plan does with it and why, and the guards evaluated", runExplain},
		"dsn":      {"the multi-host connection string for applications", runDSN},
		"run":      {"the continuous service: git or a watched path, webhook, /status and /metrics", runRun},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	v, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "reconciler: unknown verb %q\n\n", args[0])
		usage(stderr)
		return exitError
	}
	return exitCode(v.run(ctx, args[1:], stdout, stderr), stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: reconciler VERB [options]\n\nverbs:")
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, verbs[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'reconciler VERB -h' for a verb's options.")
}

// errChanges is returned by plan --detailed-exitcode when the plan is not
// empty: it maps to exit code 2 and prints nothing.
var errChanges = errors.New("plan has changes")

// usageError is a bad command line: its message is printed with the verb's
// usage.
type usageError struct {
	fs  *flag.FlagSet
	msg string
}

func (e *usageError) Error() string { return e.msg }

// hintError carries a hint for the person reading stderr.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// exitCode maps an error to the process's exit code, printing it: the one
// place where errors become exit codes.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errChanges) {
		return exitChanges
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "reconciler: %s\n", ue.msg)
		ue.fs.SetOutput(stderr)
		ue.fs.Usage()
		return exitError
	}
	var de desired.Errors
	if errors.As(err, &de) {
		// One problem a line, FILE:LINE:COL: message, nothing in front:
		// editors and CI annotations read this format.
		fmt.Fprintln(stderr, strings.TrimRight(de.Error(), "\n"))
	} else {
		fmt.Fprintf(stderr, "reconciler: %s\n", strings.TrimRight(err.Error(), "\n"))
	}
	var he *hintError
	if errors.As(err, &he) && he.hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", he.hint)
	}
	return exitError
}

// newFlags builds a verb's flag set with a usage line.
func newFlags(name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: reconciler %s %s\n\n%s\n\noptions:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a verb's flags; -h prints usage to stdout.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
		return &usageError{fs: fs, msg: err.Error()}
	}
	return nil
}

// isTerminal reports whether w is a character device (colour allowed).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
