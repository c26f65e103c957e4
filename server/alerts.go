package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/store"
)

// alerter delivers alerts to the log and to webhooks: JSON POSTs retried with exponential
// backoff. Alerts are stored before they are delivered; a webhook that stays down loses
// nothing that the API cannot list.
type alerter struct {
	log   *slog.Logger
	hooks []string
	ch    chan store.Alert
	wg    sync.WaitGroup
	ctx   context.Context
	once  sync.Once
	cl    *http.Client

	mu     sync.Mutex
	closed bool
}

const webhookAttempts = 6

func newAlerter(log *slog.Logger, hooks []string) *alerter {
	return &alerter{log: log, hooks: hooks, ch: make(chan store.Alert, 4096), cl: &http.Client{Timeout: 10 * time.Second}}
}

func (a *alerter) start(ctx context.Context) {
	a.ctx = ctx
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for al := range a.ch {
			for _, h := range a.hooks {
				a.post(h, al)
			}
		}
	}()
}

func (a *alerter) deliver(al store.Alert) {
	a.log.Warn("ALERT", "dev", al.Dev, "kind", al.Kind, "reason", al.Reason, "detail", al.Detail)
	if len(a.hooks) == 0 || a.ctx == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		a.log.Error("alert after shutdown: stored, not sent to webhooks", "dev", al.Dev, "kind", al.Kind)
		return
	}
	select {
	case a.ch <- al:
	default:
		a.log.Error("alert webhook queue full; alert is stored and listed by the API", "dev", al.Dev, "kind", al.Kind)
	}
}

func (a *alerter) post(url string, al store.Alert) {
	body, _ := json.Marshal(map[string]any{"alert": AlertViewOf(al), "source": "fieldseal"})
	delay := 500 * time.Millisecond
	for i := 0; i < webhookAttempts; i++ {
		req, err := http.NewRequestWithContext(a.ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			a.log.Error("webhook", "url", url, "err", err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := a.cl.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return
			}
		}
		a.log.Warn("webhook delivery failed, retrying", "url", url, "attempt", i+1, "err", err)
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
	}
	a.log.Error("webhook gave up", "url", url, "dev", al.Dev, "kind", al.Kind)
}

func (a *alerter) stop() {
	a.once.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		close(a.ch)
		a.wg.Wait()
	})
}

// AlertView is an alert, as listed by the API and POSTed to webhooks.
type AlertView struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Dev     string          `json:"dev"`
	Kind    string          `json:"kind"` // the state entered, or the rejection name
	Reason  string          `json:"reason"`
	Detail  json.RawMessage `json:"detail,omitempty"` // the evidence
	AckedAt time.Time       `json:"acked_at,omitzero"`
	AckedBy string          `json:"acked_by,omitempty"`
}

// AlertViewOf is the view of a stored alert.
func AlertViewOf(a store.Alert) AlertView {
	return AlertView{ID: a.ID, At: a.At, Dev: a.Dev, Kind: a.Kind, Reason: a.Reason, Detail: JSONObject(a.Detail), AckedAt: a.AckedAt, AckedBy: a.AckedBy}
}

// JSONObject is stored JSON evidence as an object for an answer: nil when there is none,
// and text that is not a JSON object (never written by this server) as {"text": "..."}.
func JSONObject(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if b := []byte(s); json.Valid(b) && b[0] == '{' {
		return b
	}
	b, _ := json.Marshal(map[string]string{"text": s})
	return b
}
