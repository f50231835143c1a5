package service

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
	"github.com/pgaf-gitops/reconciler/report"
)

// metrics are the service's Prometheus metrics, on its own registry (no
// global state).
type metrics struct {
	reg         *prometheus.Registry
	runs        *prometheus.CounterVec
	duration    prometheus.Histogram
	lastSuccess prometheus.Gauge
	drift       *prometheus.GaugeVec
	actions     *prometheus.CounterVec
	nodeState   *prometheus.GaugeVec
	nodeHealthy *prometheus.GaugeVec
	observedAt  prometheus.Gauge
	revision    *prometheus.GaugeVec
	condition   *prometheus.GaugeVec
	lockHeld    *prometheus.GaugeVec
	webhook     *prometheus.CounterVec
	fetchErrors prometheus.Counter
	triggers    *prometheus.CounterVec
	failures    prometheus.Gauge
	monitorUp   *prometheus.GaugeVec
	primaries   *prometheus.GaugeVec
	lagBytes    *prometheus.GaugeVec
	blocked     *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgaf_reconcile_runs_total",
			Help: "Reconcile runs, by result: success, stalled, waiting, transient, interrupted.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pgaf_reconcile_duration_seconds",
			Help:    "Duration of reconcile runs (fetch, load, observe, plan, apply).",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgaf_reconcile_last_success_timestamp_seconds",
			Help: "Unix time of the last successful reconcile run.",
		}),
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_drift_actions",
			Help: "Actions in the last plan of each cluster: 0 when the cluster matches the desired state.",
		}, []string{"cluster", "commit"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgaf_actions_total",
			Help: "Executed actions, by cluster, kind and result (ok or error).",
		}, []string{"cluster", "kind", "result"}),
		nodeState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_node_state",
			Help: "1 for each node's reported and assigned state as the monitor last showed them.",
		}, []string{"cluster", "node", "reported_state", "assigned_state"}),
		nodeHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_node_healthy",
			Help: "1 when the monitor's health check of the node is good, 0 otherwise.",
		}, []string{"cluster", "node"}),
		observedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgaf_observation_timestamp_seconds",
			Help: "Unix time of the last observation.",
		}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_desired_revision_info",
			Help: "1 for the desired-state revision (commit) last seen, in force, and last applied.",
		}, []string{"which", "commit"}),
		condition: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_condition",
			Help: "1 for the service's current condition and reason.",
		}, []string{"condition", "reason"}),
		lockHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_lock_held",
			Help: "1 when this instance holds the cluster's lock.",
		}, []string{"cluster"}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgaf_webhook_requests_total",
			Help: "Webhook requests, by result: accepted, unauthorized, rejected.",
		}, []string{"result"}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgaf_source_fetch_errors_total",
			Help: "Failed fetches of the desired-state source.",
		}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgaf_reconcile_triggers_total",
			Help: "What started reconcile runs: interval, webhook, fsnotify, sighup, retry.",
		}, []string{"trigger"}),
		failures: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgaf_reconcile_consecutive_failures",
			Help: "Transient failures since the last success (the backoff's exponent).",
		}),
		monitorUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_monitor_up",
			Help: "1 when the cluster's monitor answered the last observation, 0 otherwise.",
		}, []string{"cluster"}),
		primaries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_cluster_primaries",
			Help: "Nodes the monitor shows as writable (reported and assigned single, primary, wait_primary, join_primary or apply_settings); absent while the monitor is not reached.",
		}, []string{"cluster"}),
		lagBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_node_replication_lag_bytes",
			Help: "WAL bytes a standby is behind the one primary, from the LSNs the keepers last reported to the monitor; absent unless there is exactly one primary.",
		}, []string{"cluster", "node"}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_blocked_changes",
			Help: "Changes the last plan of each cluster leaves blocked, by the guard that blocks them.",
		}, []string{"cluster", "guard"}),
	}
	m.reg.MustRegister(m.runs, m.duration, m.lastSuccess, m.drift, m.actions, m.nodeState, m.nodeHealthy,
		m.observedAt, m.revision, m.condition, m.lockHeld, m.webhook, m.fetchErrors, m.triggers, m.failures,
		m.monitorUp, m.primaries, m.lagBytes, m.blocked,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observed records the monitor's view of each cluster and node.
func (m *metrics) observed(obs *observe.Observation) {
	m.observedAt.Set(float64(obs.Time.UnixMilli()) / 1000)
	m.nodeState.Reset()
	m.nodeHealthy.Reset()
	m.monitorUp.Reset()
	m.primaries.Reset()
	m.lagBytes.Reset()
	for _, c := range obs.Clusters {
		up := 0.0
		if c.Monitor.Reached {
			up = 1
		}
		m.monitorUp.WithLabelValues(c.Name).Set(up)
		if !c.Monitor.Reached {
			continue
		}
		prims := report.Primaries(c.Monitor.Nodes)
		m.primaries.WithLabelValues(c.Name).Set(float64(len(prims)))
		if len(prims) == 1 {
			m.lag(c.Name, prims[0], c.Monitor.Nodes)
		}
		for _, n := range c.Monitor.Nodes {
			m.nodeState.WithLabelValues(c.Name, n.Name, n.ReportedState, n.AssignedState).Set(1)
			h := 0.0
			if n.Health == observe.HealthGood {
				h = 1
			}
			m.nodeHealthy.WithLabelValues(c.Name, n.Name).Set(h)
		}
	}
}

// lag records how far each other node's LSN is behind the primary's
// (report.LagBytes); a node without a readable LSN is left out.
func (m *metrics) lag(cluster string, prim observe.Node, nodes []observe.Node) {
	for _, n := range nodes {
		if n.Name == prim.Name {
			continue
		}
		if l, ok := report.LagBytes(prim, n); ok {
			m.lagBytes.WithLabelValues(cluster, n.Name).Set(float64(l))
		}
	}
}

// planned records the drift and the blocked changes of each cluster.
func (m *metrics) planned(p *reconcile.Result) {
	m.drift.Reset()
	m.blocked.Reset()
	for _, c := range p.Clusters {
		m.drift.WithLabelValues(c.Name, p.Commit).Set(float64(len(c.Actions)))
		for _, b := range c.Blocked {
			m.blocked.WithLabelValues(c.Name, b.Guard).Add(1)
		}
	}
}

func (m *metrics) setRevision(which, commit string) {
	m.revision.DeletePartialMatch(prometheus.Labels{"which": which})
	m.revision.WithLabelValues(which, commit).Set(1)
}

func (m *metrics) setCondition(cond, reason string) {
	m.condition.Reset()
	m.condition.WithLabelValues(cond, reason).Set(1)
}

func (m *metrics) setLocks(held []string) {
	m.lockHeld.Reset()
	for _, c := range held {
		m.lockHeld.WithLabelValues(c).Set(1)
	}
}
