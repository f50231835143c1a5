package service

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxWebhookBody bounds a webhook's body: a push event is a few kilobytes.
const MaxWebhookBody = 1 << 20

// SignatureHeader carries the webhook's HMAC-SHA256 as "sha256=<hex>", the
// form git hosts send.
const SignatureHeader = "X-Hub-Signature-256"

// Handler serves /healthz, /readyz, /metrics, /status (JSON), the status
// page at /, and the webhook at webhookPath (POST only).
func (s *Service) Handler(webhookPath string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", s.statusJSON)
	mux.HandleFunc("GET /{$}", s.page)
	if webhookPath != "" {
		mux.HandleFunc("POST "+webhookPath, s.webhook)
	}
	return mux
}

// healthz answers 200 while the loop runs.
func (s *Service) healthz(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.loopExited:
		http.Error(w, "loop exited", http.StatusServiceUnavailable)
		return
	default:
	}
	select {
	case <-s.loopAlive:
		io.WriteString(w, "ok\n")
	default:
		http.Error(w, "loop not started", http.StatusServiceUnavailable)
	}
}

// readyz answers 200 once a desired state is in force and a run finished.
func (s *Service) readyz(w http.ResponseWriter, r *http.Request) {
	st := s.Status()
	switch {
	case st.LastRun == nil:
		http.Error(w, "no run finished yet", http.StatusServiceUnavailable)
	case st.InForce == nil:
		http.Error(w, "no valid desired state: "+st.Message, http.StatusServiceUnavailable)
	default:
		io.WriteString(w, "ready\n")
	}
}

func (s *Service) statusJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Status())
}

// webhook checks the body's HMAC-SHA256 against the secret in constant
// time and triggers a run. A missing or bad signature gets 401 and changes
// nothing.
func (s *Service) webhook(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.WebhookSecret) == 0 {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		s.metrics.webhook.WithLabelValues("rejected").Inc()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	if !ValidSignature(s.cfg.WebhookSecret, body, r.Header.Get(SignatureHeader)) {
		s.metrics.webhook.WithLabelValues("unauthorized").Inc()
		s.log.Warn("webhook refused: missing or bad signature", "remote", r.RemoteAddr)
		http.Error(w, "missing or bad "+SignatureHeader, http.StatusUnauthorized)
		return
	}
	s.metrics.webhook.WithLabelValues("accepted").Inc()
	s.log.Info("webhook accepted", "remote", r.RemoteAddr, "event", r.Header.Get("X-GitHub-Event"))
	s.Trigger("webhook")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "reconcile triggered\n")
}

// ValidSignature reports whether header is "sha256=" and the hex HMAC-SHA256
// of body under secret, compared in constant time.
func ValidSignature(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign returns the X-Hub-Signature-256 value of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

var pageTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"short": shortRev,
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>reconciler: {{.Condition}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}
.Ready{color:#176f2c}.Reconciling{color:#8a6d00}.Stalled{color:#b00020}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
pre{background:#f4f4f4;padding:.6em;white-space:pre-wrap}
</style></head><body>
<h1 class="{{.Condition}}">{{.Condition}} <small>({{.Reason}})</small></h1>
{{if .Message}}<pre>{{.Message}}</pre>{{end}}
{{if .Errors}}<h2>Problems in the newest revision</h2><ul>{{range .Errors}}<li><code>{{.Error}}</code></li>{{end}}</ul>{{end}}
<table>
<tr><th>source</th><td>{{.Source}}{{if .DryRun}} <b>(dry run: never acts)</b>{{end}}</td></tr>
<tr><th>instance</th><td>{{.Instance}}; locks held: {{range .LocksHeld}}{{.}} {{else}}none{{end}}</td></tr>
<tr><th>last seen</th><td>{{with .LastSeen}}<code>{{short .Revision}}</code> {{.Subject}} {{if .SignedBy}}(signed by {{.SignedBy}}){{end}}{{else}}-{{end}}</td></tr>
<tr><th>in force</th><td>{{with .InForce}}<code>{{short .Revision}}</code> {{.Subject}}{{else}}-{{end}}</td></tr>
<tr><th>last applied</th><td>{{with .LastApplied}}<code>{{short .Revision}}</code> at {{.At.Format "2006-01-02 15:04:05Z07:00"}}{{else}}-{{end}}</td></tr>
<tr><th>last run</th><td>{{with .LastRun}}{{.Trigger}} at {{.Start.Format "15:04:05"}}, {{.Duration}}: {{.Result}}{{else}}-{{end}}{{with .Current}} (running since {{.Start.Format "15:04:05"}}, {{.Trigger}}){{end}}</td></tr>
<tr><th>observation</th><td>{{if .ObservationAge}}{{.ObservationAge}} old{{else}}-{{end}}</td></tr>
<tr><th>next run</th><td>{{if not .NextRun.IsZero}}{{.NextRun.Format "15:04:05"}}{{else}}-{{end}}; consecutive failures: {{.ConsecutiveFailures}}</td></tr>
</table>
{{with .LastPlan}}<h2>Last plan ({{len .Actions}} action(s))</h2>
{{range .Clusters}}<h3>{{.Name}}</h3>
<table><tr><th>node</th><th>vm</th><th>container</th><th>monitor state</th></tr>
{{range .Members}}<tr><td>{{.Node}}</td><td>{{.VM}}:{{.Port}}</td><td>{{.Container}}</td><td>{{.State}}</td></tr>{{end}}</table>
{{if .Actions}}<ol>{{range .Actions}}<li><b>{{.Kind}}</b> {{.Node}}: {{.Reason}}</li>{{end}}</ol>{{end}}
{{range .Blocked}}<p>blocked ({{.Guard}}): {{.Reason}}</p>{{end}}
{{end}}{{end}}
{{if .Steps}}<h2>Steps of the last run</h2><table><tr><th>cluster</th><th>action</th><th>duration</th><th>error</th></tr>
{{range .Steps}}<tr><td>{{.Cluster}}</td><td>{{.What}}</td><td>{{.Duration}}</td><td>{{.Error}}</td></tr>{{end}}</table>{{end}}
<p><a href="/status">JSON</a> · <a href="/metrics">metrics</a></p>
</body></html>
`))

func (s *Service) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, s.Status()); err != nil {
		s.log.Warn("status page", "err", err)
	}
}
