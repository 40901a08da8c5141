package rewards

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestSettle(t *testing.T) {
	tests := []struct {
		name                 string
		matured, carry       string
		scale                int32
		wantMoved, wantCarry string
	}{
		{"scale 0: less than a unit stays", "0.672", "0", 0, "0", "0.672"},
		{"scale 0: carry completes a unit", "0.672", "0.672", 0, "1", "0.344"},
		{"scale 0: third run", "0.672", "0.344", 0, "1", "0.016"},
		{"scale 0: remainder of exactly one unit", "0.4", "0.6", 0, "1", "0"},
		{"scale 0: one 1e-18 short of a unit", "0.4", "0.599999999999999999", 0, "0", "0.999999999999999999"},
		{"scale 0: whole units move whole", "12", "0", 0, "12", "0"},
		{"scale 2: cents move, the rest stays", "0.672", "0", 2, "0.67", "0.002"},
		{"scale 2: remainder of exactly one cent", "0.004", "0.006", 2, "0.01", "0"},
		{"scale 2: one 1e-18 short of a cent", "0.004", "0.005999999999999999", 2, "0", "0.009999999999999999"},
		{"matured exactly 0, no carry", "0", "0", 0, "0", "0"},
		{"matured exactly 0 keeps the carry", "0", "0.5", 0, "0", "0.5"},
		{"negative total moves nothing", "-1", "0.5", 0, "0", "-0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			moved, carry := Settle(d(tt.matured), d(tt.carry), tt.scale)
			if moved.String() != tt.wantMoved || carry.String() != tt.wantCarry {
				t.Errorf("Settle(%s, %s, %d) = %s, %s; want %s, %s",
					tt.matured, tt.carry, tt.scale, moved, carry, tt.wantMoved, tt.wantCarry)
			}
			if !moved.Add(carry).Equal(d(tt.matured).Add(d(tt.carry))) {
				t.Errorf("moved + carry = %s, want %s", moved.Add(carry), d(tt.matured).Add(d(tt.carry)))
			}
		})
	}
}

// Three runs of 0.672 at scale 0 and scale 2: what is not moved is carried, never lost.
func TestSettleAcrossRuns(t *testing.T) {
	tests := []struct {
		scale     int32
		moved     []string
		wantCarry string
	}{
		{0, []string{"0", "1", "1"}, "0.016"},
		{2, []string{"0.67", "0.67", "0.67"}, "0.006"},
	}
	for _, tt := range tests {
		carry := decimal.Zero
		total := decimal.Zero
		for i, want := range tt.moved {
			var moved decimal.Decimal
			moved, carry = Settle(d("0.672"), carry, tt.scale)
			if moved.String() != want {
				t.Errorf("scale %d run %d: moved %s, want %s", tt.scale, i+1, moved, want)
			}
			total = total.Add(moved)
		}
		if carry.String() != tt.wantCarry {
			t.Errorf("scale %d: carry %s, want %s", tt.scale, carry, tt.wantCarry)
		}
		if !total.Add(carry).Equal(d("2.016")) {
			t.Errorf("scale %d: moved %s + carry %s != 2.016", tt.scale, total, carry)
		}
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
