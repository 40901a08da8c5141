// Command tally runs the Tally service and its operator commands. main only wires the
// process to run, which tests call directly.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"
)

func main() {
	// gin's mode is global to the process, so the process sets it, once: release mode
	// keeps gin from printing its debug banner and every route at startup.
	gin.SetMode(gin.ReleaseMode)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts a graceful stop; a second one ends the process at once (the
	// signal's default action), as an operator who sends it means.
	go func() { <-ctx.Done(); stop() }()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2) // what was wrong with the command line is printed already
	case err != nil:
		fmt.Fprintln(os.Stderr, "tally:", err)
		os.Exit(1)
	}
}
