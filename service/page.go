package service

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
	"github.com/pgaf-gitops/reconciler/report"
)

// The status page: everything is in the template (no external assets).
// The page shows whole without script; with script it fetches its live
// part (?part=live) every few seconds and swaps it in place.

// pageData is what the page shows: the status, per cluster the report
// joined with the last plan's pending actions, newest first throughout.
type pageData struct {
	Status
	Now        time.Time
	Clusters   []pageCluster
	commitBase string
}

type pageCluster struct {
	report.Cluster
	NoPrimary bool     // the monitor knows nodes, none of them writable
	Primary   string   // the writable node, when there is one
	Unwell    []string // nodes not healthy or whose container is not running
	MaxLag    int64    // the largest lag of a standby, if HasLag
	HasLag    bool
	Pending   []reconcile.Action // of the last plan
	Events    []observe.Event    // newest first
	Failovers []report.Failover  // newest first
}

func newPageData(st Status, now time.Time) *pageData {
	p := &pageData{Status: st, Now: now, commitBase: commitBase(st.Source)}
	if st.Report == nil {
		return p
	}
	pending := map[string][]reconcile.Action{}
	if st.LastPlan != nil {
		for _, c := range st.LastPlan.Clusters {
			pending[c.Name] = c.Actions
		}
	}
	for _, c := range st.Report.Clusters {
		pc := pageCluster{Cluster: c, Pending: pending[c.Name], Events: slices.Clone(c.RecentEvents()), Failovers: slices.Clone(c.Failovers)}
		slices.Reverse(pc.Events)
		slices.Reverse(pc.Failovers)
		for _, r := range c.Rows {
			pc.NoPrimary = pc.NoPrimary || c.Primaries == 0 && r.NodeID != 0
			if c.Primaries == 1 && report.Writable(r.Reported) && report.Writable(r.Assigned) {
				pc.Primary = r.Node
			}
			if r.Health != observe.HealthGood || r.Container != "running" {
				pc.Unwell = append(pc.Unwell, r.Node)
			}
			if r.LagBytes != nil && (!pc.HasLag || *r.LagBytes > pc.MaxLag) {
				pc.MaxLag, pc.HasLag = *r.LagBytes, true
			}
		}
		p.Clusters = append(p.Clusters, pc)
	}
	return p
}

// Link is the URL of commit's page at the source, or "" (see commitBase).
func (p *pageData) Link(commit string) string {
	if p.commitBase == "" || !isCommit(commit) {
		return ""
	}
	return p.commitBase + commit
}

// revLink is a revision to show, linked when URL is not "".
type revLink struct{ Revision, URL string }

// Rev is r with its link.
func (p *pageData) Rev(r *Revision) revLink { return revLink{r.Revision, p.Link(r.Commit)} }

// RunRev is the revision run enforced, with its link.
func (p *pageData) RunRev(r Run) revLink { return revLink{r.Revision, p.Link(r.Commit)} }

// Ago is how long before the page t was ("-" for zero).
func (p *pageData) Ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return p.Now.Sub(t).Round(time.Second).String() + " ago"
}

// commitBase is "https://host/owner/repo/commit/" when the source's URL
// (Status.Source begins with it) is https://host/owner/repo or
// https://host/owner/repo.git, the form GitHub, Gitea and Forgejo serve
// commit pages under; "" for anything else, which is shown without links.
func commitBase(source string) string {
	raw, _, _ := strings.Cut(source, " ")
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 {
		return ""
	}
	owner, repo := parts[0], strings.TrimSuffix(parts[1], ".git")
	if owner == "" || repo == "" {
		return ""
	}
	return "https://" + u.Host + "/" + url.PathEscape(owner) + "/" + url.PathEscape(repo) + "/commit/"
}

// isCommit reports whether s is a full SHA-1 or SHA-256 commit id.
func isCommit(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Service) page(w http.ResponseWriter, r *http.Request) {
	name := "page"
	if r.URL.Query().Get("part") == "live" {
		name = "live"
	}
	var b bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&b, name, newPageData(s.Status(), s.cfg.Now())); err != nil {
		s.log.Warn("status page", "err", err)
		http.Error(w, "rendering the status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	_, _ = w.Write(b.Bytes())
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"short": shortRev,
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"bytes":    report.HumanBytes,
	"writable": report.Writable,
	"secs":     func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<noscript><meta http-equiv="refresh" content="10"></noscript>
<title>{{.Condition}} · reconciler {{.Instance}}</title>
<style>
body{font:14px/1.35 system-ui,sans-serif;margin:0 1.2em 2em;color:#111}
h1{margin:0;font-size:1.6em}h2{margin:1.2em 0 .3em;border-bottom:2px solid #ddd}h3{margin:1em 0 .3em}h4{margin:.6em 0 .2em;font-size:1em}
header{padding:.6em 1em;margin:0 -1.2em 1em;color:#fff}
.c-Ready{background:#176f2c}.c-Reconciling{background:#8a6d00}.c-Stalled{background:#b00020}
header pre{background:rgba(0,0,0,.2);color:#fff}
table{border-collapse:collapse;margin:.2em 0}td,th{border:1px solid #ccc;padding:.15em .45em;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.t{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap;margin:.3em 0}code{font-size:.95em}
.ok{color:#176f2c}.warn{color:#8a6d00}.bad{color:#b00020;font-weight:600}
tr.p td{font-weight:600}td.good{color:#176f2c}td.bad,td.unknown{color:#b00020;font-weight:600}
.badge{padding:0 .4em;border-radius:.3em;font-size:.85em;color:#fff;background:#176f2c}.badge.bad{background:#b00020;color:#fff}
.scroll{max-height:11em;overflow:auto;display:inline-block;border-bottom:1px solid #ccc}
.muted,small{color:#666}header small{color:#eee}#stale{background:#fff;color:#b00020}
ul,ol{margin:.2em 0;padding-left:1.4em}section{margin-bottom:1.4em}
</style></head><body>
<div id="live">{{template "live" .}}</div>
<script>
(function(){
var live=document.getElementById('live');
function tick(){
if(document.hidden||String(window.getSelection())!==''){setTimeout(tick,5000);return}
fetch('?part=live',{cache:'no-store'}).then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.text()}).then(function(t){
live.innerHTML=t;var h=live.querySelector('[data-title]');if(h)document.title=h.getAttribute('data-title');
}).catch(function(e){var s=document.getElementById('stale');if(s)s.textContent=' · not refreshed: '+e.message+', retrying'}).finally(function(){setTimeout(tick,5000)});
}
setTimeout(tick,5000);
})();
</script>
</body></html>
{{define "live"}}<header class="c-{{.Condition}}" data-title="{{.Condition}} · reconciler {{.Instance}}">
<h1>{{.Condition}} <small>{{.Reason}}</small></h1>
{{if .Message}}<pre>{{.Message}}</pre>{{end}}
<small>as of {{ts .Now}}; all times UTC<span id="stale"></span></small>
</header>
{{if .Errors}}<h2>Problems in the newest revision</h2><ul>{{range .Errors}}<li><code>{{.Error}}</code></li>{{end}}</ul>{{end}}
<table>
<tr><th>source</th><td>{{.Source}}{{if .DryRun}} <b class="warn">(dry run: never acts)</b>{{end}}</td></tr>
<tr><th>instance</th><td>{{.Instance}}; locks held: {{range .LocksHeld}}{{.}} {{else}}none{{end}}</td></tr>
<tr><th>last seen</th><td>{{with .LastSeen}}{{template "rev" ($.Rev .)}} {{.Subject}}{{if .SignedBy}} (signed by {{.SignedBy}}){{end}}{{else}}-{{end}}</td></tr>
<tr><th>in force</th><td>{{with .InForce}}{{template "rev" ($.Rev .)}} {{.Subject}}{{else}}-{{end}}</td></tr>
<tr><th>last applied</th><td>{{with .LastApplied}}{{template "rev" ($.Rev .)}} at {{ts .At}}{{else}}-{{end}}</td></tr>
<tr><th>last run</th><td>{{with .LastRun}}{{.Trigger}} at {{ts .Start}}, {{.Duration}}: {{.Result}}{{else}}-{{end}}{{with .Current}} <b>(running since {{ts .Start}}, {{.Trigger}})</b>{{end}}</td></tr>
<tr><th>observation</th><td>{{if .ObservationAge}}{{ts .ObservedAt}}, {{.ObservationAge}} old{{else}}none yet{{end}}</td></tr>
<tr><th>next run</th><td>{{ts .NextRun}}; consecutive failures: {{.ConsecutiveFailures}}; last success {{$.Ago .LastSuccess}}</td></tr>
</table>
<h2>Clusters</h2>
{{with .Report}}{{range .Unreachable}}<p class="bad">NOT REACHED: {{.}}</p>{{end}}{{else}}<p>No observation yet.</p>{{end}}
{{if .Clusters}}<table><tr><th>cluster</th><th>primary</th><th>not well</th><th>max lag</th><th>blocked</th><th>pending</th><th>last failover</th></tr>
{{range .Clusters}}<tr><td><a href="#c-{{.Name}}">{{.Name}}</a></td><td>{{template "primary" .}}</td><td{{if .Unwell}} class="bad"{{end}}>{{range .Unwell}}{{.}} {{else}}-{{end}}</td><td class="n">{{if .HasLag}}{{bytes .MaxLag}}{{else}}-{{end}}</td><td class="n{{if .Blocked}} bad{{end}}">{{len .Blocked}}</td><td class="n">{{len .Pending}}</td><td>{{if .Failovers}}{{with index .Failovers 0}}{{.From}} &rarr; {{or .To "?"}} {{$.Ago .Start}}{{end}}{{else}}-{{end}}</td></tr>
{{end}}</table>{{end}}
{{range .Clusters}}<section id="c-{{.Name}}">
<h3>{{.Name}} {{template "primary" .}} <small>monitor {{.Monitor}}</small></h3>
<table><tr><th>node</th><th>id</th><th>vm:port</th><th>container</th><th>image</th><th>reported</th><th>assigned</th><th>tl:lsn</th><th title="WAL bytes behind the one primary, from the LSNs last reported to the monitor">lag</th><th title="replay_lag in the primary's pg_stat_replication">replay lag</th><th title="replication_quorum: sync when the node counts in the primary's synchronous quorum">sync</th><th title="candidate_priority: 0 is never promoted">prio</th><th>health</th><th>in state</th></tr>
{{range .Rows}}<tr{{if and (writable .Reported) (writable .Assigned)}} class="p"{{end}}><td>{{.Node}}</td><td class="n">{{if .NodeID}}{{.NodeID}}{{else}}-{{end}}</td><td>{{.Where}}</td><td{{if ne .Container "running"}} class="bad"{{end}}>{{.Container}}</td><td>{{or .Image "-"}}</td><td>{{.Reported}}</td><td>{{.Assigned}}</td><td>{{.TimelineLSN}}</td><td class="n"{{with .LagBytes}} title="{{.}} bytes"{{end}}>{{.Lag}}</td><td class="n">{{.ReplayLag}}</td><td>{{.Sync}}</td><td class="n">{{if .NodeID}}{{.CandidatePriority}}{{else}}-{{end}}</td><td class="{{.Health}}">{{.Health}}</td><td>{{.InState}}</td></tr>
{{end}}</table>
{{if .Pending}}<h4>Pending in the last plan ({{len .Pending}})</h4><ol>{{range .Pending}}<li><b>{{.Kind}}</b> {{.Node}}: {{.Reason}}</li>{{end}}</ol>{{end}}
{{range .Blocked}}<p class="bad">{{.Label}} {{.Node}}, guard <code>{{.Guard}}</code>: {{.Reason}}</p>{{end}}
{{range .Orphans}}<p class="warn">orphaned volume {{.Volume}} on {{.VM}} (node {{.Node}}, {{if ge .SizeBytes 0}}{{bytes .SizeBytes}}{{else}}size unknown{{end}}): kept; delete it by hand or set removed_node_data: delete</p>{{end}}
{{if .Failovers}}<h4>Failovers and switchovers seen (newest first)</h4>
<table><tr><th>start</th><th>kind</th><th>from</th><th>to</th><th>writes unavailable</th><th>old primary marked unhealthy</th></tr>
{{range .Failovers}}<tr><td>{{ts .Start}} <small>{{$.Ago .Start}}</small></td><td>{{.Kind}}</td><td>{{.From}}</td><td>{{or .To "-"}}</td><td>{{if .End.IsZero}}<b class="bad">in progress: no new primary yet</b>{{else}}{{secs .Unavailable}}{{end}}</td><td>{{if .Unhealthy.IsZero}}-{{else}}{{ts .Unhealthy}}{{end}}</td></tr>
{{end}}</table>{{end}}
<h4>Monitor events (newest first)</h4>
{{if .Events}}<div class="scroll"><table><tr><th>time</th><th>node</th><th>reported</th><th>assigned</th><th>description</th></tr>
{{range .Events}}<tr><td class="t">{{ts .Time}}</td><td>{{.NodeName}}</td><td>{{.Reported}}</td><td>{{.Assigned}}</td><td>{{.Description}}</td></tr>
{{end}}</table></div>{{else}}<p class="muted">none</p>{{end}}
</section>
{{end}}
<h2 id="runs">Runs (newest first)</h2>
<table><tr><th>start</th><th>trigger</th><th>commit</th><th>result</th><th>duration</th><th>steps</th><th>pending</th><th>blocked</th><th>error</th></tr>
{{with .Current}}<tr><td>{{ts .Start}}</td><td>{{.Trigger}}</td><td>-</td><td class="warn">running</td><td>-</td><td class="n">{{len .Steps}}</td><td>-</td><td>-</td><td></td></tr>
{{template "steps" .}}{{end}}
{{range .Runs}}<tr><td>{{ts .Start}} <small>{{$.Ago .Start}}</small></td><td>{{.Trigger}}</td><td>{{if .Revision}}{{template "rev" ($.RunRev .)}}{{else}}-{{end}}</td><td class="{{if eq .Result "success"}}ok{{else if eq .Result "waiting" "interrupted"}}warn{{else}}bad{{end}}">{{.Result}}</td><td>{{.Duration}}</td><td class="n">{{len .Steps}}</td><td class="n">{{.Pending}}</td><td class="n">{{.Blocked}}</td><td>{{.Error}}</td></tr>
{{template "steps" .}}{{else}}<tr><td colspan="9" class="muted">no run finished yet</td></tr>{{end}}
</table>
<p><a href="/status">JSON</a> · <a href="/metrics">metrics</a></p>
{{end}}
{{define "steps"}}{{if .Steps}}<tr><td></td><td colspan="8"><ol>{{range .Steps}}<li>{{.What}} <small>({{.Duration}}{{if .Error}}, <span class="bad">error: {{.Error}}</span>{{else}}, ok{{end}})</small>{{if .Reason}}<br>why: {{.Reason}}{{end}}{{if .Evidence}}<ul>{{range .Evidence}}<li>{{.}}</li>{{end}}</ul>{{end}}</li>{{end}}</ol></td></tr>
{{end}}{{end}}
{{define "primary"}}{{if lt .Primaries 0}}<span class="badge bad">monitor not reached</span>{{else if gt .Primaries 1}}<span class="badge bad">{{.Primaries}} PRIMARIES</span>{{else if .NoPrimary}}<span class="badge bad">NO PRIMARY</span>{{else if .Primary}}<span class="badge">primary {{.Primary}}</span>{{end}}{{end}}
{{define "rev"}}{{if .URL}}<a href="{{.URL}}"><code>{{short .Revision}}</code></a>{{else}}<code>{{short .Revision}}</code>{{end}}{{end}}
`))
