package app

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// The healthy slots go to the first passes' queue and the following passes' in turn
// while both wait, each queue in the order asked; a pass that stops waiting (its lane
// ends) takes no slot with it.
func TestSlotPoolServesTheQueuesInTurn(t *testing.T) {
	ctx := context.Background()
	p := newSlotPool(1)
	if !p.acquire(ctx, true) {
		t.Fatal("a free slot was not given")
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	queued := func(n int) { // waits until n passes wait
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			p.mu.Lock()
			w := len(p.queues[0]) + len(p.queues[1])
			p.mu.Unlock()
			if w == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d passes waiting, want %d", w, n)
			}
		}
	}
	wait := func(name string, following bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.acquire(ctx, following) {
				t.Errorf("%s: no slot", name)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			p.release()
		}()
	}
	wait("busy1", true)
	queued(1)
	wait("busy2", true)
	queued(2)
	wait("busy3", true)
	queued(3)
	wait("first1", false)
	queued(4)
	wait("first2", false)
	queued(5)
	gone, cancel := context.WithCancel(ctx)
	stopped := make(chan bool)
	go func() { stopped <- p.acquire(gone, false) }()
	queued(6)
	cancel()
	if <-stopped {
		t.Fatal("a pass whose lane ended got a slot")
	}
	p.release()
	wg.Wait()
	if want := []string{"first1", "busy1", "first2", "busy2", "busy3"}; !slices.Equal(order, want) {
		t.Fatalf("slots went to %v, want %v", order, want)
	}
	if p.free != 1 {
		t.Fatalf("%d slots free after every pass gave its slot back, want 1", p.free)
	}
}
