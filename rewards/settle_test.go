package rewards

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

// walletWith is a wallet holding pending (of which carry is a settlement's remainder)
// and available, consistent with its lifetime figure.
func walletWith(pending, carry, available string) Wallet {
	w := NewWallet()
	w.Pending, w.Carry, w.Available = d(pending), d(carry), d(available)
	w.LifetimeEarned = w.Pending.Add(w.Available)
	return w
}

func TestWalletSettle(t *testing.T) {
	tests := []struct {
		name                 string
		matured, carry       string
		scale                int32
		wantMoved, wantCarry string
		wantOK               bool
	}{
		{"scale 0: less than a unit stays", "0.672", "0", 0, "0", "0.672", true},
		{"scale 0: carry completes a unit", "0.672", "0.672", 0, "1", "0.344", true},
		{"scale 0: third run", "0.672", "0.344", 0, "1", "0.016", true},
		{"scale 0: remainder of exactly one unit", "0.4", "0.6", 0, "1", "0", true},
		{"scale 0: one 1e-18 short of a unit", "0.4", "0.599999999999999999", 0, "0", "0.999999999999999999", true},
		{"scale 0: whole units move whole", "12", "0", 0, "12", "0", true},
		{"scale 2: cents move, the rest stays", "0.672", "0", 2, "0.67", "0.002", true},
		{"scale 2: remainder of exactly one cent", "0.004", "0.006", 2, "0.01", "0", true},
		{"scale 2: one 1e-18 short of a cent", "0.004", "0.005999999999999999", 2, "0", "0.009999999999999999", true},
		{"matured exactly 0, no carry", "0", "0", 0, "0", "0", true},
		{"matured exactly 0 keeps the carry", "0", "0.5", 0, "0", "0.5", true},
		{"a matured debit the carry covers exactly", "-0.5", "0.5", 0, "0", "0", true},
		{"a matured debit larger than the carry waits", "-1", "0.5", 0, "0", "0.5", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Pending holds the matured lots, the carry and 3 units not yet matured.
			pending := d(tt.matured).Add(d(tt.carry)).Add(d("3"))
			w := walletWith(pending.String(), tt.carry, "10")
			after, e, ok := w.Settle(d(tt.matured), tt.scale)
			moved := after.Available.Sub(w.Available)
			if ok != tt.wantOK || moved.String() != tt.wantMoved || after.Carry.String() != tt.wantCarry {
				t.Errorf("Settle(%s) with carry %s at scale %d = moved %s, carry %s, ok %v; want %s, %s, %v",
					tt.matured, tt.carry, tt.scale, moved, after.Carry, ok, tt.wantMoved, tt.wantCarry, tt.wantOK)
			}
			if !after.Pending.Equal(pending.Sub(moved)) || !after.LifetimeEarned.Equal(w.LifetimeEarned) {
				t.Errorf("pending %s, lifetime %s after moving %s from %+v", after.Pending, after.LifetimeEarned, moved, w)
			}
			if ok && !moved.Add(after.Carry).Equal(d(tt.matured).Add(d(tt.carry))) {
				t.Errorf("moved + carry = %s, want %s", moved.Add(after.Carry), d(tt.matured).Add(d(tt.carry)))
			}
			if (e != nil) != moved.IsPositive() {
				t.Errorf("entry %v for moved %s", e, moved)
			}
			if e != nil && !e.UserDelta(Available).Equal(moved) {
				t.Errorf("entry moves %s, wallet %s", e.UserDelta(Available), moved)
			}
		})
	}
}

// Three runs of 0.672 at scale 0 and scale 2: what is not moved is carried, never lost.
func TestWalletSettleAcrossRuns(t *testing.T) {
	tests := []struct {
		scale     int32
		moved     []string
		wantCarry string
	}{
		{0, []string{"0", "1", "1"}, "0.016"},
		{2, []string{"0.67", "0.67", "0.67"}, "0.006"},
	}
	for _, tt := range tests {
		w := NewWallet()
		for i, want := range tt.moved {
			var err error
			if w, err = w.Post(Entry{Kind: EntryRevenue, Legs: []Leg{{Bucket: Pending, Amount: d("0.672")}, {System: AccountRevenue, Amount: d("-0.672")}}}); err != nil {
				t.Fatal(err)
			}
			before := w.Available
			var ok bool
			if w, _, ok = w.Settle(d("0.672"), tt.scale); !ok {
				t.Fatalf("run %d refused", i+1)
			}
			if moved := w.Available.Sub(before); moved.String() != want {
				t.Errorf("scale %d run %d: moved %s, want %s", tt.scale, i+1, moved, want)
			}
		}
		if w.Carry.String() != tt.wantCarry || !w.Pending.Equal(w.Carry) {
			t.Errorf("scale %d: carry %s pending %s, want both %s", tt.scale, w.Carry, w.Pending, tt.wantCarry)
		}
		if !w.Available.Add(w.Carry).Equal(d("2.016")) {
			t.Errorf("scale %d: moved %s + carry %s != 2.016", tt.scale, w.Available, w.Carry)
		}
	}
}

// Every > versus >= of the debits: exactly what is there may go, one 1e-18 more may not,
// and a refused debit leaves the wallet as it was.
func TestWalletDebits(t *testing.T) {
	w := walletWith("2", "0.5", "10")
	tests := []struct {
		name    string
		do      func(Wallet) (Wallet, Entry, error)
		wantErr error
		want    Wallet
	}{
		{"redeem all of available", func(w Wallet) (Wallet, Entry, error) { return w.Redeem(d("10")) }, nil,
			Wallet{Available: d("0"), Pending: d("2"), Carry: d("0.5"), Redeemed: d("10"), LifetimeEarned: d("12")}},
		{"redeem 1e-18 more than available", func(w Wallet) (Wallet, Entry, error) { return w.Redeem(d("10.000000000000000001")) },
			ErrInsufficientFunds, w},
		{"redeem nothing", func(w Wallet) (Wallet, Entry, error) { return w.Redeem(d("0")) }, ErrInvalidRequest, w},
		{"debit all of available", func(w Wallet) (Wallet, Entry, error) { return w.Adjust(d("-10"), Available) }, nil,
			Wallet{Available: d("0"), Pending: d("2"), Carry: d("0.5"), Redeemed: d("0"), LifetimeEarned: d("2")}},
		{"debit 1e-18 more than available", func(w Wallet) (Wallet, Entry, error) { return w.Adjust(d("-10.000000000000000001"), Available) },
			ErrInsufficientFunds, w},
		{"credit available", func(w Wallet) (Wallet, Entry, error) { return w.Adjust(d("0.25"), Available) }, nil,
			Wallet{Available: d("10.25"), Pending: d("2"), Carry: d("0.5"), Redeemed: d("0"), LifetimeEarned: d("12.25")}},
		{"debit all of pending", func(w Wallet) (Wallet, Entry, error) { return w.Adjust(d("-2"), Pending) }, nil,
			Wallet{Available: d("10"), Pending: d("0"), Carry: d("0.5"), Redeemed: d("0"), LifetimeEarned: d("10")}},
		{"debit more than pending", func(w Wallet) (Wallet, Entry, error) { return w.Adjust(d("-2.000000000000000001"), Pending) },
			ErrInsufficientFunds, w},
		{"adjust by zero", func(w Wallet) (Wallet, Entry, error) { return w.Adjust(d("0"), Available) }, ErrInvalidRequest, w},
		{"adjust an unknown bucket", func(w Wallet) (Wallet, Entry, error) { return w.Adjust(d("1"), "bonus") }, ErrInvalidRequest, w},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, e, err := tt.do(w)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !walletEqual(got, tt.want) {
				t.Errorf("wallet %+v, want %+v", got, tt.want)
			}
			if err == nil && !e.Balanced() {
				t.Errorf("entry %v does not balance", e)
			}
			var ife *InsufficientFundsError
			if errors.As(err, &ife) && (ife.Available.IsNegative() || !ife.Requested.IsPositive()) {
				t.Errorf("insufficient funds figures %+v", ife)
			}
		})
	}
}

func walletEqual(a, b Wallet) bool {
	return a.Available.Equal(b.Available) && a.Pending.Equal(b.Pending) && a.Carry.Equal(b.Carry) &&
		a.Redeemed.Equal(b.Redeemed) && a.LifetimeEarned.Equal(b.LifetimeEarned)
}

func TestWalletPostRefusesUnbalancedEntries(t *testing.T) {
	w := NewWallet()
	if _, err := w.Post(Entry{Kind: EntryRevenue, Legs: []Leg{{Bucket: Pending, Amount: d("1")}}}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("unbalanced: err = %v", err)
	}
	big := decimal.New(1, MaxIntegerDigits)
	if _, err := w.Post(Entry{Kind: EntryRevenue, Legs: []Leg{{Bucket: Pending, Amount: big}, {System: AccountRevenue, Amount: big.Neg()}}}); !errors.Is(err, ErrAmount) {
		t.Errorf("too large: err = %v", err)
	}
	// Two credits that each fit, whose sum does not: the second is refused and the
	// wallet is left as it was.
	most := big.Sub(d("1"))
	once, _, err := w.Adjust(most, Available)
	if err != nil {
		t.Fatalf("the largest adjustment: %v", err)
	}
	if after, _, err := once.Adjust(d("1"), Available); !errors.Is(err, ErrAmount) || !errors.Is(err, ErrInvalidRequest) || !walletEqual(after, once) {
		t.Errorf("a balance past %d integer digits: %+v, err = %v", MaxIntegerDigits, after, err)
	}
}

func TestEntryLots(t *testing.T) {
	now := t0
	credit := Entry{Kind: EntryTarget, MaturesAt: t0.Add(3600e9), Legs: []Leg{{Bucket: Pending, Amount: d("5")}, {System: AccountTargets, Amount: d("-5")}}}
	if !credit.Lot().Equal(d("5")) || !credit.LotMatures(now).Equal(t0.Add(3600e9)) {
		t.Errorf("credit lot %s at %v", credit.Lot(), credit.LotMatures(now))
	}
	debit := AdjustmentEntry(d("-2"), Pending)
	if !debit.Lot().Equal(d("-2")) || !debit.LotMatures(now).Before(now) {
		t.Errorf("pending debit lot %s at %v: want -2, matured already", debit.Lot(), debit.LotMatures(now))
	}
	for _, e := range []Entry{SettlementEntry(d("1")), RedemptionEntry(d("1")), AdjustmentEntry(d("1"), Available)} {
		if !e.Lot().IsZero() {
			t.Errorf("%s entry has lot %s", e.Kind, e.Lot())
		}
	}
	if got := AdjustmentEntry(d("4"), Pending).LotMatures(now); !got.Equal(now) {
		t.Errorf("pending credit matures %v, want now", got)
	}
}

func TestEntryConstructors(t *testing.T) {
	s := SettlementEntry(d("3"))
	checkLegs(t, s, []wantLeg{{bucket: Pending, amount: "-3"}, {bucket: Available, amount: "3"}})
	if s.Kind != EntrySettlement || s.Rule != "settlement" {
		t.Errorf("settlement header %q %q", s.Kind, s.Rule)
	}

	r := RedemptionEntry(d("2.5"))
	checkLegs(t, r, []wantLeg{{bucket: Available, amount: "-2.5"}, {system: AccountRedemptions, amount: "2.5"}})
	if r.Kind != EntryRedemption || !r.UserDelta(Available).Equal(d("-2.5")) {
		t.Errorf("redemption %+v", r)
	}

	credit := AdjustmentEntry(d("7"), Available)
	checkLegs(t, credit, []wantLeg{{bucket: Available, amount: "7"}, {system: AccountAdjustments, amount: "-7"}})
	debit := AdjustmentEntry(d("-1.25"), Pending)
	checkLegs(t, debit, []wantLeg{{bucket: Pending, amount: "-1.25"}, {system: AccountAdjustments, amount: "1.25"}})
	if debit.Kind != EntryAdjustment || debit.Rule != "adjustment" {
		t.Errorf("adjustment header %q %q", debit.Kind, debit.Rule)
	}
}
