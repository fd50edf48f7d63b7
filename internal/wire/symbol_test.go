package wire

import (
	"testing"
)

// symbolAndStr decodes member "w" of doc with Symbol and with Str, each
// on a Decoder of its own.
func symbolAndStr(doc []byte, pr Presence) (sym, str string, symProblems, strProblems int) {
	var a, b Decoder
	a.Init(doc)
	b.Init(doc)
	sym = a.Symbol("w", pr)
	str = b.Str("w", pr, nil)
	return sym, str, len(a.Problems), len(b.Problems)
}

func TestSymbolReadsWhatStrReads(t *testing.T) {
	for _, doc := range []string{
		`{"w":"echo"}`, `{"w":"echo","w":"other"}`, `{"w":""}`, `{"w":null}`, `{}`, `{"w":3}`,
		`{"w":"a\"b"}`, `{"w":"\u00e9t\u00e9"}`, `{"w":"été"}`, "{\"w\":\"\xff\"}", `{"w": "spaced" }`,
	} {
		for _, pr := range []Presence{Required, Optional, Nullable, RequiredText} {
			sym, str, sp, tp := symbolAndStr([]byte(doc), pr)
			if sym != str || sp != tp {
				t.Errorf("%s (presence %d): Symbol %q with %d problems, Str %q with %d", doc, pr, sym, sp, str, tp)
			}
		}
	}
}

func TestASymbolSeenOnceIsDecodedWithoutAnAllocation(t *testing.T) {
	doc := []byte(`{"w":"summarize-symbol-test"}`)
	symbolAndStr(doc, Required)
	n := testing.AllocsPerRun(100, func() {
		var d Decoder
		d.Init(doc)
		if d.Symbol("w", Required) != "summarize-symbol-test" {
			t.Fatal("wrong value")
		}
	})
	var d Decoder
	base := testing.AllocsPerRun(100, func() { d.Init(doc); d.Take("w") })
	if n > base {
		t.Errorf("Symbol allocates %v times, the decoding around it %v: want no allocation of its own", n, base)
	}
}

func FuzzSymbolAgreesWithStr(f *testing.F) {
	for _, s := range []string{`{"w":"echo"}`, `{"w":"a\"b"}`, `{"w":""}`, `{"w":null}`, "{\"w\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !Valid(doc) {
			return
		}
		sym, str, sp, tp := symbolAndStr(doc, Required)
		if sym != str || sp != tp {
			t.Fatalf("%s: Symbol %q with %d problems, Str %q with %d", doc, sym, sp, str, tp)
		}
	})
}
