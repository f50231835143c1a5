package service

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
	"github.com/pgaf-gitops/reconciler/report"
)

// metrics are the service's Prometheus metrics, on its own registry (no
// global state).
type metrics struct {
	reg          *prometheus.Registry
	runs         *prometheus.CounterVec
	duration     prometheus.Histogram
	lastSuccess  prometheus.Gauge
	drift        *prometheus.GaugeVec
	actions      *prometheus.CounterVec
	nodeState    *prometheus.GaugeVec
	nodeHealthy  *prometheus.GaugeVec
	observedAt   prometheus.Gauge
	revision     *prometheus.GaugeVec
	condition    *prometheus.GaugeVec
	lockHeld     *prometheus.GaugeVec
	webhook      *prometheus.CounterVec
	fetchErrors  prometheus.Counter
	triggers     *prometheus.CounterVec
	failures     prometheus.Gauge
	monitorUp    *prometheus.GaugeVec
	primaries    *prometheus.GaugeVec
	lagBytes     *prometheus.GaugeVec
	lagSeconds   *prometheus.GaugeVec
	blocked      *prometheus.GaugeVec
	observeTime  prometheus.Histogram
	failovers    *prometheus.CounterVec
	lastFailover *prometheus.GaugeVec

	// started is when the service started: failovers that ended before it
	// are history the monitor still holds, not counted.
	started time.Time
	// counted is, per cluster, the end of the newest failover counted.
	counted map[string]time.Time
}

func newMetrics(started time.Time) *metrics {
	m := &metrics{
		started: started,
		counted: map[string]time.Time{},
		reg:     prometheus.NewRegistry(),
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
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_node_replication_lag_seconds",
			Help: "Replay lag of a standby as the one primary's pg_stat_replication shows it (0 when it replayed all it was sent); absent when the primary's server was not read or does not list the standby.",
		}, []string{"cluster", "node"}),
		observeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pgaf_observation_duration_seconds",
			Help:    "Duration of observations: every VM's Docker and node servers and every cluster's monitor, in parallel.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgaf_failovers_total",
			Help: "Changes of primary completed since the service started, as the monitor's events show them, by kind: failover (the old primary was marked unhealthy) or switchover.",
		}, []string{"cluster", "kind"}),
		lastFailover: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_last_failover_timestamp_seconds",
			Help: "Unix time at which the newest change of primary in the monitor's events completed; absent when the events kept show none.",
		}, []string{"cluster"}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgaf_blocked_changes",
			Help: "Changes the last plan of each cluster leaves blocked, by the guard that blocks them.",
		}, []string{"cluster", "guard"}),
	}
	m.reg.MustRegister(m.runs, m.duration, m.lastSuccess, m.drift, m.actions, m.nodeState, m.nodeHealthy,
		m.observedAt, m.revision, m.condition, m.lockHeld, m.webhook, m.fetchErrors, m.triggers, m.failures,
		m.monitorUp, m.primaries, m.lagBytes, m.lagSeconds, m.blocked, m.observeTime, m.failovers, m.lastFailover,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observed records the monitor's view of each cluster and node, and how
// long the observation took.
func (m *metrics) observed(obs *observe.Observation, took time.Duration) {
	m.observedAt.Set(float64(obs.Time.UnixMilli()) / 1000)
	m.observeTime.Observe(took.Seconds())
	m.nodeState.Reset()
	m.nodeHealthy.Reset()
	m.monitorUp.Reset()
	m.primaries.Reset()
	m.lagBytes.Reset()
	m.lagSeconds.Reset()
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
			m.lag(obs, c.Name, prims[0], c.Monitor.Nodes)
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
// (report.LagBytes) and its replay lag (report.ReplayLag); what is not
// known is left out.
func (m *metrics) lag(obs *observe.Observation, cluster string, prim observe.Node, nodes []observe.Node) {
	for _, n := range nodes {
		if n.Name == prim.Name {
			continue
		}
		if l, ok := report.LagBytes(prim, n); ok {
			m.lagBytes.WithLabelValues(cluster, n.Name).Set(float64(l))
		}
		if l, ok := report.ReplayLag(obs, cluster, prim, n.ID); ok {
			m.lagSeconds.WithLabelValues(cluster, n.Name).Set(l)
		}
	}
}

// changesOfPrimary records the failovers and switchovers of each cluster
// in fs (the changes of primary its kept events show, oldest first):
// each completed one that ended after the service started and after the
// newest already counted is counted once, and the newest's end is the
// last failover's time. A cluster no longer shown keeps its counter (a
// counter does not go down) but loses its timestamp.
func (m *metrics) changesOfPrimary(fs map[string][]report.Failover) {
	m.lastFailover.Reset()
	for cluster, list := range fs {
		for _, f := range list {
			if f.End.IsZero() {
				continue
			}
			m.lastFailover.WithLabelValues(cluster).Set(float64(f.End.UnixMilli()) / 1000)
			if f.End.After(m.started) && f.End.After(m.counted[cluster]) {
				m.failovers.WithLabelValues(cluster, f.Kind).Inc()
				m.counted[cluster] = f.End
			}
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
