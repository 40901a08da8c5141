package app

import (
	"errors"

	"github.com/gin-gonic/gin"
)

// payoutReport: GET /v1/admin/reports/payouts (issue 5; not built yet).
func (a *App) payoutReport(c *gin.Context) { a.fail(c, errors.New("payout report not implemented")) }
