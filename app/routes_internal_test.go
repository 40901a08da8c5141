package app

import (
	"testing"

	"github.com/gin-gonic/gin"
)

// Building the handler leaves gin's process-wide mode as it found it (cmd/tally's main
// sets release mode once).
func TestHandlerLeavesGinModeAlone(t *testing.T) {
	prev := gin.Mode()
	defer gin.SetMode(prev)
	gin.SetMode(gin.TestMode)
	a := New(nil, Options{})
	defer a.Close()
	a.routes()
	if got := gin.Mode(); got != gin.TestMode {
		t.Fatalf("gin mode %q after building the routes, want %q untouched", got, gin.TestMode)
	}
}
