package app

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// The healthy slots go to a long pass waiting when no long pass holds one, else to the
// short passes waiting, in the order they asked, then to the long ones; a pass that
// stops waiting (its lane ends) takes no slot with it.
func TestSlotPoolPutsShortPassesFirst(t *testing.T) {
	for _, c := range []struct {
		name    string
		holders []bool // kinds holding the two slots (true: long); the first gives its slot back
		waiting []bool // kinds waiting, in the order they ask
		want    []int  // the order the waiting passes get a slot, by index in waiting
	}{
		// A long pass holds a slot: the short ones waiting go first, then the long ones.
		{"long held", []bool{true, true}, []bool{true, false, false, true}, []int{1, 2, 0, 3}},
		// No long pass holds one: a long one waiting goes before the short ones, and the
		// slot it gives back to the next long one (one slot passes here).
		{"none long held", []bool{false, false}, []bool{false, true, false, true}, []int{1, 3, 0, 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			p := newSlotPool(len(c.holders))
			for _, long := range c.holders {
				if !p.acquire(ctx, long) {
					t.Fatal("a free slot was not given")
				}
			}
			var mu sync.Mutex
			var order []int
			var wg sync.WaitGroup
			for i, long := range c.waiting {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if !p.acquire(ctx, long) {
						t.Errorf("pass %d: no slot", i)
						return
					}
					mu.Lock()
					order = append(order, i)
					mu.Unlock()
					p.release(long)
				}()
				poolWaiting(t, p, i+1)
			}
			gone, cancel := context.WithCancel(ctx)
			stopped := make(chan bool)
			go func() { stopped <- p.acquire(gone, false) }()
			poolWaiting(t, p, len(c.waiting)+1)
			cancel()
			if <-stopped {
				t.Fatal("a pass whose lane ended got a slot")
			}
			p.release(c.holders[0]) // one slot for all the waiting passes, in turn
			wg.Wait()
			if !slices.Equal(order, c.want) {
				t.Fatalf("slots went to %v, want %v", order, c.want)
			}
			p.release(c.holders[1])
			if p.free != len(c.holders) || p.held != [2]int{} {
				t.Fatalf("%d slots free, %v held after every pass gave its slot back; want %d, none", p.free, p.held, len(c.holders))
			}
		})
	}
}

// poolWaiting waits until n passes wait for a slot of p.
func poolWaiting(t *testing.T, p *slotPool, n int) {
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

// A pass is a long one after a pass that gave its slot up, or sent a whole batch (an
// endpoint answering at once with work queued), and a short one after any other.
func TestLongAfterAPassThatLeftWorkQueued(t *testing.T) {
	for _, c := range []struct {
		n       int
		stopped bool
		want    bool
	}{
		{0, false, false},
		{webhookBatch - 1, false, false},
		{webhookBatch, false, true},
		{3, true, true},
	} {
		if got := longAfter(c.n, c.stopped); got != c.want {
			t.Errorf("after a pass that sent %d (stopped %v): long %v, want %v", c.n, c.stopped, got, c.want)
		}
	}
}

// An endpoint moves to the slow slots after two passes in a row with a late send, and
// back after two passes in a row that sent in time: with one, an endpoint late two
// passes in three went back and forth, each time holding a healthy slot for two late
// passes and logging the move twice.
func TestSlowAfterNeedsTwoPassesInARowEachWay(t *testing.T) {
	type pass struct {
		late bool
		n    int
		slow bool // where its next pass runs
	}
	run, slow := 0, false
	for i, p := range []pass{
		{true, 3, false},  // one late send: not yet
		{false, 0, false}, // nothing sent: says nothing
		{true, 3, true},   // two in a row
		{false, 5, true},  // one in time: not yet back
		{true, 5, true},   // late again: starts over
		{false, 5, true},
		{false, 0, true},  // nothing sent: says nothing
		{false, 5, false}, // two in time in a row: back
		{true, 5, false},  // one late send is one again
		{false, 5, false},
		{true, 5, false},
		{true, 5, true},
	} {
		run, slow = slowAfter(run, slow, p.late, p.n)
		if slow != p.slow {
			t.Fatalf("pass %d (late %v, sent %d): slow %v, want %v", i, p.late, p.n, slow, p.slow)
		}
	}
	// Late two passes in three, from the healthy slots: it moves once and stays.
	run, slow = 0, false
	moves, inHealthy := 0, 0
	for i := range 30 {
		late := i%3 != 2
		if late && !slow {
			inHealthy++
		}
		was := slow
		run, slow = slowAfter(run, slow, late, 5)
		if slow != was {
			moves++
		}
	}
	if moves != 1 || inHealthy != 2 {
		t.Errorf("late two passes in three: %d moves, %d late passes in a healthy slot in 30; want 1 and 2", moves, inHealthy)
	}
}
