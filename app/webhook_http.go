package app

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"tally/rewards"
)

type deliveryJSON struct {
	ID                 string          `json:"id"`
	Property           string          `json:"property"`
	User               string          `json:"user"`
	URL                string          `json:"url"`
	Type               string          `json:"type"`
	Status             string          `json:"status"`
	Attempts           int             `json:"attempts"`
	NextAttemptAt      *time.Time      `json:"next_attempt_at"` // null unless pending
	LastAttemptAt      *time.Time      `json:"last_attempt_at"`
	LastStatus         *int            `json:"last_status"` // HTTP status of the last answer; null when none came
	LastError          string          `json:"last_error"`
	DeliveredAt        *time.Time      `json:"delivered_at"`
	CreatedAt          time.Time       `json:"created_at"`
	EndpointDisabledAt *time.Time      `json:"endpoint_disabled_at"`
	Payload            json.RawMessage `json:"payload"` // the body sent, as sent
}

func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toDeliveryJSON(d rewards.Delivery) deliveryJSON {
	out := deliveryJSON{ID: strconv.FormatInt(d.ID, 10), Property: d.Property, User: d.User, URL: d.Endpoint, Type: d.Type,
		Status: d.Status, Attempts: d.Attempts, LastAttemptAt: timeOrNull(d.LastAttemptAt), LastError: d.LastError,
		DeliveredAt: timeOrNull(d.DeliveredAt), CreatedAt: d.CreatedAt, EndpointDisabledAt: timeOrNull(d.EndpointDisabledAt),
		Payload: json.RawMessage(d.Body)}
	if d.Status == rewards.DeliveryPending {
		out.NextAttemptAt = timeOrNull(d.NextAttemptAt)
	}
	if d.LastStatus != 0 {
		s := d.LastStatus
		out.LastStatus = &s
	}
	return out
}

// listWebhookDeliveries: GET /v1/admin/webhooks/deliveries?status=&limit=&cursor=
func (a *App) listWebhookDeliveries(c *gin.Context) {
	f := rewards.DeliveryFilter{Status: c.Query("status")}
	limit, err := limitParam(c, 100, 1000)
	if err != nil {
		a.fail(c, err)
		return
	}
	if f.Before, err = cursorParam(c); err != nil {
		a.fail(c, err)
		return
	}
	f.Limit = limit + 1
	ds, err := a.WebhookDeliveries(c.Request.Context(), f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toListPage(ds, limit, func(d rewards.Delivery) int64 { return d.ID }, toDeliveryJSON))
}

// retryWebhookDelivery: POST /v1/admin/webhooks/deliveries/:id/retry
func (a *App) retryWebhookDelivery(c *gin.Context) {
	id, ok := positiveID(c.Param("id"))
	if !ok {
		a.fail(c, invalid("id", "must be a delivery id: a positive integer"))
		return
	}
	d, err := a.RetryWebhook(c.Request.Context(), id, actor(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toDeliveryJSON(d))
}
