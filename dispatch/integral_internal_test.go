package dispatch

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

func TestIntegralTextWritesIntegralNumbersAsIntegersExactly(t *testing.T) {
	tests := []struct {
		num  string
		want string // "" when num is left as it is
	}{
		{"1.0", "1"},
		{"-1.000", "-1"},
		{"-0.0", "-0"},
		{"0e5", "0"},
		{"2.5e1", "25"},
		{"25E-0", "25"},
		{"1e2", "100"},
		{"1E+2", "100"},
		{"1200e-2", "12"},
		{"9007199254740993.0", "9007199254740993"},         // beyond 2^53: a float64 would round it
		{"12345678901234567890.0", "12345678901234567890"}, // beyond int64, within uint64
		{"18446744073709551615e0", "18446744073709551615"},
		{"1", ""},    // an integer already
		{"-7", ""},   // an integer already
		{"1.5", ""},  // not integral
		{"1e-1", ""}, // not integral
		{"0.1e1", "1"},
		{"123.45e1", ""},
		{"1e19", "10000000000000000000"},
		{"1e20", ""},         // beyond 20 digits: fits no integer field
		{"1e999999999", ""},  // never written out
		{"1e-999999999", ""}, // not integral
		{"1.0e99999999999999999999", ""},
		{"100000000000000000000000.0", ""},
	}
	for _, tt := range tests {
		got, ok := integralText(tt.num)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("integralText(%q) = %q, %v; want %q", tt.num, got, ok, tt.want)
		}
	}
}

// FuzzIntegralText checks integralText against math/big: where it writes
// an integer, that is the number's exact value; where the number is an
// integer of at most maxIntegralDigits digits written with a fraction or
// an exponent, it writes it.
func FuzzIntegralText(f *testing.F) {
	for _, s := range []string{"1.0", "-0.0", "2.5e1", "1.5", "1e19", "1e20", "9007199254740993.0", "0.1e1", "1e-1", "-12.000e+3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, num string) {
		var n json.Number
		if json.Unmarshal([]byte(num), &n) != nil || string(n) != num || len(num) > 64 {
			return // not one JSON number, or too long for big.Rat to be quick
		}
		if i := strings.IndexAny(num, "eE"); i >= 0 {
			if e, err := strconv.Atoi(num[i+1:]); err != nil || e > 100 || e < -100 {
				return // big.Rat would write out 10^e
			}
		}
		got, ok := integralText(num)
		r, okRat := new(big.Rat).SetString(num)
		if !okRat {
			t.Fatalf("big.Rat cannot read %q", num)
		}
		abs := new(big.Int).Abs(r.Num()).String()
		want := r.IsInt() && strings.ContainsAny(num, ".eE") && len(abs) <= maxIntegralDigits
		if ok != want {
			t.Fatalf("integralText(%q) ok = %v, want %v", num, ok, want)
		}
		if !ok {
			return
		}
		wantText := r.Num().String()
		if r.Sign() == 0 && strings.HasPrefix(num, "-") {
			wantText = "-0"
		}
		if got != wantText {
			t.Fatalf("integralText(%q) = %q, want %q", num, got, wantText)
		}
	})
}
