package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"tally/rewards"
)

// MaxBodyBytes is the largest provider body accepted (64 KiB).
const MaxBodyBytes = 64 << 10

type hookAnswer struct {
	Status  string `json:"status"`   // accepted | duplicate
	EventID string `json:"event_id"` // the inbox id of the recorded event; GET /v1/admin/events/{id} shows what became of it
}

// receiveHook is the handler of one provider's route: read the raw body (signatures are
// over the exact bytes), hand it to Receive, answer once it is recorded. The deadline
// starts when the request arrives, body reading included.
func (a *App) receiveHook(src rewards.Source) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), ReceiveDeadline)
		defer cancel()
		body, err := readBody(c.Request)
		if err != nil {
			a.countIngest(c.Param("property"), src, ingestOutcome(rewards.Receipt{}, err))
			a.fail(c, err)
			return
		}
		r, err := a.Receive(ctx, c.Param("property"), src, c.Request.Header, body)
		if err != nil {
			a.fail(c, err)
			return
		}
		ans := hookAnswer{Status: "accepted", EventID: strconv.FormatInt(r.EventID, 10)}
		if r.Duplicate {
			ans.Status = "duplicate"
			c.Header("Idempotent-Replay", "true")
		}
		answerJSON(c, http.StatusOK, ans.appendJSON)
	}
}

// appendJSON writes the answer as json.Marshal would (TestHandWrittenJSON): every
// recorded postback, and every duplicate of one, is answered with it.
func (h *hookAnswer) appendJSON(b []byte) []byte {
	b = append(b, `{"status":`...)
	b = appendJSONString(b, h.Status)
	b = append(b, `,"event_id":`...)
	b = appendJSONString(b, h.EventID)
	return append(b, '}')
}

// readBody reads at most MaxBodyBytes; a longer body is ErrBodyTooLarge, and one that
// stops short (a read timeout, a connection closed mid-body) is ErrBodyIncomplete.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, ErrBodyTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, ErrBodyTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBodyIncomplete, err)
	}
	return body, nil
}
