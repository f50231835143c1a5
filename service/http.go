package service

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
