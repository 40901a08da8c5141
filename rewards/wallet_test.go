package rewards

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

// A reversal undoes a redemption: available comes back, redeemed goes down, and it can
// never return more than the wallet has redeemed.
func TestReverseBoundaries(t *testing.T) {
	d := decimal.RequireFromString
	w := NewWallet()
	w, _, err := w.Adjust(d("100"), Available)
	if err != nil {
		t.Fatal(err)
	}
	if w, _, err = w.Redeem(d("60")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		amount string
		ok     bool
	}{
		{"0", false},
		{"-1", false},
		{"60.000000000000000001", false}, // one ledger unit more than redeemed
		{"60", true},                     // exactly what was redeemed
		{"25.5", true},
	} {
		after, e, err := w.Reverse(d(c.amount))
		if !c.ok {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("Reverse(%s): err %v, want ErrInvalidRequest", c.amount, err)
			}
			if after != w {
				t.Errorf("Reverse(%s) refused but changed the wallet: %+v", c.amount, after)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Reverse(%s): %v", c.amount, err)
		}
		a := d(c.amount)
		if !after.Available.Equal(w.Available.Add(a)) || !after.Redeemed.Equal(w.Redeemed.Sub(a)) ||
			!after.Pending.Equal(w.Pending) || !after.LifetimeEarned.Equal(w.LifetimeEarned) {
			t.Errorf("Reverse(%s): %+v from %+v", c.amount, after, w)
		}
		if e.Kind != EntryReversal || !e.Balanced() || !e.UserDelta(Available).Equal(a) {
			t.Errorf("Reverse(%s) entry %+v", c.amount, e)
		}
		if !after.Available.Add(after.Pending).Equal(after.LifetimeEarned.Sub(after.Redeemed)) {
			t.Errorf("Reverse(%s): available + pending != lifetime − redeemed: %+v", c.amount, after)
		}
	}
}
