package actuators

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// ApplyEach converges every cluster of st on its own, all at once: one
// cluster's wait, failed step or held lock neither delays nor stops
// another's. Each runs Apply on st.Only(its name) with the executor
// newExecutor gives for that state (its observations cover every VM and
// that cluster's monitor). With a single cluster it is Apply itself.
//
// Each line a cluster's apply writes to out is prefixed with the
// cluster's name. The outcome holds every cluster's steps, cluster by
// cluster in the state's order, and a last plan joining each cluster's;
// the error joins each failed cluster's, prefixed with its name.
func ApplyEach(ctx context.Context, st *desired.State, newExecutor func(sub *desired.State) *Executor, out io.Writer, log *slog.Logger) (*Outcome, error) {
	if len(st.Clusters) <= 1 {
		return Apply(ctx, st, newExecutor(st), out, log)
	}
	type result struct {
		o   *Outcome
		err error
	}
	results := make([]result, len(st.Clusters))
	var mu sync.Mutex // one line at a time on out
	var wg sync.WaitGroup
	for i := range st.Clusters {
		name := st.Clusters[i].Name
		sub := st.Only(name)
		wg.Go(func() {
			w := &prefixWriter{mu: &mu, w: out, prefix: name + ": "}
			x := newExecutor(sub)
			x.Progress = w // a wait's progress lines too carry the cluster's name
			o, err := Apply(ctx, sub, x, w, log)
			w.flush()
			if err != nil {
				err = &ClusterError{Cluster: name, Err: err}
			}
			results[i] = result{o, err}
		})
	}
	wg.Wait()
	all := &Outcome{Last: &reconcile.Result{Version: reconcile.PlanSchemaVersion, Commit: st.Commit, Clusters: []reconcile.ClusterPlan{}, Notes: []string{}}}
	var errs []error
	var stopped []string
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
		}
		if r.o == nil {
			continue
		}
		all.Steps = append(all.Steps, r.o.Steps...)
		if r.o.Stopped != "" {
			stopped = append(stopped, st.Clusters[i].Name+": "+r.o.Stopped)
		}
		if p := r.o.Last; p != nil {
			all.Last.Clusters = append(all.Last.Clusters, p.Clusters...)
			all.Last.Notes = append(all.Last.Notes, p.Notes...)
			if p.ObservedAt.After(all.Last.ObservedAt) {
				all.Last.ObservedAt = p.ObservedAt
			}
		}
	}
	sort.Slice(all.Last.Clusters, func(i, j int) bool { return all.Last.Clusters[i].Name < all.Last.Clusters[j].Name })
	sort.Strings(all.Last.Notes)
	all.Last.Notes = slices.Compact(all.Last.Notes)
	all.Stopped = strings.Join(stopped, "; ")
	return all, errors.Join(errs...)
}

// ClusterError is what stopped one cluster's apply in ApplyEach.
type ClusterError struct {
	Cluster string
	Err     error
}

func (e *ClusterError) Error() string { return "cluster " + e.Cluster + ": " + e.Err.Error() }
func (e *ClusterError) Unwrap() error { return e.Err }

// prefixWriter writes whole lines to w, each with prefix, under mu.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if err := p.line(p.buf[:i+1]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}

// flush writes what is left without a newline, as a line.
func (p *prefixWriter) flush() {
	if len(p.buf) > 0 {
		_ = p.line(append(p.buf, '\n'))
		p.buf = nil
	}
}

func (p *prefixWriter) line(l []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := io.WriteString(p.w, p.prefix+string(l))
	return err
}
