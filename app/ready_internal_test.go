package app

import (
	"context"
	"errors"
	"testing"
	"time"
)

// /readyz asks the read replica within a short deadline, one probe at a time, and at
// most every few seconds: a replica gone silent held each probe for 5 s, past the load
// balancer's probe timeout, and took every instance out with it.
func TestReplicaCheckIsBoundedAndShared(t *testing.T) {
	var r replicaCheck
	down := errors.New("replica down")
	entered, release := make(chan struct{}), make(chan struct{})
	asked := 0
	hang := func(ctx context.Context) error {
		asked++
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > replicaCheckTimeout {
			t.Errorf("the replica is asked without a deadline within %s", replicaCheckTimeout)
		}
		close(entered)
		<-release
		return down
	}
	first := make(chan error, 1)
	go func() { first <- r.check(context.Background(), hang) }()
	<-entered
	// A probe while the first asks does not queue behind it.
	if err := r.check(context.Background(), hang); err != nil {
		t.Errorf("a probe during the first: %v, want the (still empty) last answer", err)
	}
	close(release)
	if err := <-first; !errors.Is(err, down) {
		t.Fatalf("first probe: %v", err)
	}
	// Within replicaCheckEvery the answer is the last one, unasked.
	if err := r.check(context.Background(), hang); !errors.Is(err, down) || asked != 1 {
		t.Errorf("a probe right after: %v, asked %d times; want the last answer, asked once", err, asked)
	}
}
