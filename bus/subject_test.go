package bus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// badCharacters is every class of character the subject rule refuses, with
// how the error names it.
var badCharacters = []struct {
	name, char, what string
}{
	{"a space is white space", " ", "white space U+0020"},
	{"a tab is white space", "\t", "white space U+0009"},
	{"a line feed is white space", "\n", "white space U+000A"},
	{"a vertical tab is white space", "\v", "white space U+000B"},
	{"a form feed is white space", "\f", "white space U+000C"},
	{"a carriage return is white space", "\r", "white space U+000D"},
	{"next line U+0085 is white space, not only a control character", "\u0085", "white space U+0085"},
	{"a no-break space is white space", "\u00a0", "white space U+00A0"},
	{"the ogham space mark is white space", "\u1680", "white space U+1680"},
	{"an en quad is white space", "\u2000", "white space U+2000"},
	{"an em space is white space", "\u2003", "white space U+2003"},
	{"a hair space is white space", "\u200a", "white space U+200A"},
	{"the line separator is white space", "\u2028", "white space U+2028"},
	{"the paragraph separator is white space", "\u2029", "white space U+2029"},
	{"a narrow no-break space is white space", "\u202f", "white space U+202F"},
	{"a medium mathematical space is white space", "\u205f", "white space U+205F"},
	{"an ideographic space is white space", "\u3000", "white space U+3000"},
	{"NUL is a control character", "\x00", "control character U+0000"},
	{"BEL is a control character", "\a", "control character U+0007"},
	{"escape is a control character", "\x1b", "control character U+001B"},
	{"DEL is a control character", "\x7f", "control character U+007F"},
	{"a C1 control is a control character", "\u0080", "control character U+0080"},
	{"the last C1 control is a control character", "\u009f", "control character U+009F"},
	{"a zero-width space is an invisible format character", "\u200b", "invisible format character U+200B"},
	{"a zero-width non-joiner is an invisible format character", "\u200c", "invisible format character U+200C"},
	{"a zero-width joiner is an invisible format character", "\u200d", "invisible format character U+200D"},
	{"a right-to-left override is an invisible format character", "\u202e", "invisible format character U+202E"},
	{"a first strong isolate is an invisible format character", "\u2068", "invisible format character U+2068"},
	{"a word joiner is an invisible format character", "\u2060", "invisible format character U+2060"},
	{"a soft hyphen is an invisible format character", "\u00ad", "invisible format character U+00AD"},
	{"a byte-order mark is an invisible format character", "\ufeff", "invisible format character U+FEFF"},
	{"the fullwidth full stop looks like a dot", "\uff0e", "lookalike of '.' U+FF0E"},
	{"the ideographic full stop looks like a dot", "\u3002", "lookalike of '.' U+3002"},
	{"the halfwidth ideographic full stop looks like a dot", "\uff61", "lookalike of '.' U+FF61"},
	{"the small full stop looks like a dot", "\ufe52", "lookalike of '.' U+FE52"},
	{"the one dot leader looks like a dot", "\u2024", "lookalike of '.' U+2024"},
	{"a byte that starts no UTF-8 sequence is invalid UTF-8", "\xff", "invalid UTF-8 (byte 0xFF)"},
	{"a lone continuation byte is invalid UTF-8", "\x80", "invalid UTF-8 (byte 0x80)"},
	{"a truncated sequence is invalid UTF-8", "\xe2\x80", "invalid UTF-8 (byte 0xE2)"},
	{"an encoded surrogate is invalid UTF-8", "\xed\xa0\x80", "invalid UTF-8 (byte 0xED)"},
	{"an overlong encoding of '.' is invalid UTF-8", "\xc0\xae", "invalid UTF-8 (byte 0xC0)"},
}

func TestEveryCheckRefusesTheSameCharactersAndSaysWhere(t *testing.T) {
	for _, tc := range badCharacters {
		t.Run(tc.name, func(t *testing.T) {
			token := "ab" + tc.char + "c"
			subject := "heddle.tasks." + token
			checks := []struct {
				fn       func(string) error
				s        string
				sentinel error
				want     string
			}{
				{ValidateToken, token, ErrBadSubject, fmt.Sprintf("bus: bad subject token %q: %s at byte 2", token, tc.what)},
				{ValidatePublishSubject, subject, ErrBadSubject, fmt.Sprintf("bus: bad subject %q: %s at byte 15", subject, tc.what)},
				{ValidateSubscribeSubject, subject, ErrBadSubject, fmt.Sprintf("bus: bad subject %q: %s at byte 15", subject, tc.what)},
				{ValidateSubscribeSubject, "heddle.*.>" + tc.char, ErrBadSubject, fmt.Sprintf("bus: bad subject %q: %s at byte 10", "heddle.*.>"+tc.char, tc.what)},
				{ValidateQueue, token, ErrBadQueue, fmt.Sprintf("bus: bad queue group %q: %s at byte 2", token, tc.what)},
			}
			for _, c := range checks {
				err := c.fn(c.s)
				if err == nil || err.Error() != c.want || !errors.Is(err, c.sentinel) {
					t.Errorf("check(%q) = %v,\nwant %s, wrapping %v", c.s, err, c.want, c.sentinel)
				}
			}
		})
	}
}

func TestTheDocumentedErrorReadsAsPromised(t *testing.T) {
	err := ValidatePublishSubject("heddle.tasks.a b")
	const want = `bus: bad subject "heddle.tasks.a b": white space U+0020 at byte 14`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestPublishSubjectsAreValidatedTokenByToken(t *testing.T) {
	for _, tc := range []struct {
		name, subject string
		why           string // "" for a valid subject
	}{
		{"a subject of three tokens is valid", "heddle.tasks.incoming", ""},
		{"a single token is valid", "a", ""},
		{"hyphens and digits are ordinary characters", "heddle.results.2f1c-uuid", ""},
		{"letters of any script are valid", "heddle.tasks.résumé.日本語.Ελληνικά", ""},
		{"an emoji without a joiner is valid", "heddle.tasks.\U0001F680", ""},
		{"the replacement character itself is valid UTF-8", "a.\uFFFD", ""},
		{"'*' inside a longer token is an ordinary character", "a.b*.c", ""},
		{"'>' inside a longer token is an ordinary character", "a.>b", ""},
		{"an empty subject is refused", "", "empty"},
		{"a lone dot has an empty first token", ".", "empty token at byte 0"},
		{"a leading dot makes an empty token", ".a", "empty token at byte 0"},
		{"a trailing dot makes an empty token", "a.", "empty token at byte 2"},
		{"two dots make an empty token", "heddle..tasks", "empty token at byte 7"},
		{"a '*' token is a wildcard", "a.*", `wildcard "*" at byte 2 is not allowed in a publish subject`},
		{"a '>' token is a wildcard", "a.>", `wildcard ">" at byte 2 is not allowed in a publish subject`},
		{"a lone '*' is a wildcard", "*", `wildcard "*" at byte 0 is not allowed in a publish subject`},
		{"the first offence is the one reported", "a b..*", "white space U+0020 at byte 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePublishSubject(tc.subject)
			if tc.why == "" {
				if err != nil {
					t.Fatalf("ValidatePublishSubject(%q) = %v, want nil", tc.subject, err)
				}
				return
			}
			want := fmt.Sprintf("bus: bad subject %q: %s", tc.subject, tc.why)
			if err == nil || err.Error() != want || !errors.Is(err, ErrBadSubject) {
				t.Fatalf("ValidatePublishSubject(%q) = %v, want %s wrapping ErrBadSubject", tc.subject, err, want)
			}
		})
	}
}

func TestSubscribeSubjectsMayUseWildcards(t *testing.T) {
	for _, tc := range []struct {
		name, subject string
		why           string // "" for a valid subject
	}{
		{"'*' may stand for any token", "heddle.tasks.*.local", ""},
		{"'>' may end a subject", "heddle.results.>", ""},
		{"'>' alone matches everything", ">", ""},
		{"several '*' tokens are allowed", "*.*", ""},
		{"'*' may come before a final '>'", "a.*.>", ""},
		{"'>' before the last token is refused", "a.>.b", `wildcard ">" at byte 2 is not the last token`},
		{"'>' as the first of two tokens is refused", ">.a", `wildcard ">" at byte 0 is not the last token`},
		{"an empty token is refused next to a wildcard", "a.*..>", "empty token at byte 4"},
		{"an empty subject is refused", "", "empty"},
		{"white space after a dot is refused", "a. b", "white space U+0020 at byte 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSubscribeSubject(tc.subject)
			if tc.why == "" {
				if err != nil {
					t.Fatalf("ValidateSubscribeSubject(%q) = %v, want nil", tc.subject, err)
				}
				return
			}
			want := fmt.Sprintf("bus: bad subject %q: %s", tc.subject, tc.why)
			if err == nil || err.Error() != want || !errors.Is(err, ErrBadSubject) {
				t.Fatalf("ValidateSubscribeSubject(%q) = %v, want %s wrapping ErrBadSubject", tc.subject, err, want)
			}
		})
	}
}

func TestATokenIsOneLiteralToken(t *testing.T) {
	for _, tc := range []struct {
		name, token string
		why         string // "" for a valid token
	}{
		{"a worker type is a valid token", "summarizer", ""},
		{"a UUID is a valid token", "2f1c9a7e-5b0d-4c1e-9d7a-3f6b8e2a1c04", ""},
		{"letters of any script are valid", "résumé", ""},
		{"'*' inside a longer token is an ordinary character", "a*", ""},
		{"an empty token is refused", "", "empty"},
		{"a dot would split it into two tokens", "a.b", "'.' at byte 1: a token cannot contain the separator"},
		{"a lone dot is refused as a separator", ".", "'.' at byte 0: a token cannot contain the separator"},
		{"'*' would be a wildcard", "*", `wildcard "*" at byte 0 is not allowed in a token`},
		{"'>' would be a wildcard", ">", `wildcard ">" at byte 0 is not allowed in a token`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateToken(tc.token)
			if tc.why == "" {
				if err != nil {
					t.Fatalf("ValidateToken(%q) = %v, want nil", tc.token, err)
				}
				if err := ValidatePublishSubject("heddle.tasks." + tc.token); err != nil {
					t.Fatalf("a valid token makes an invalid subject: %v", err)
				}
				return
			}
			want := fmt.Sprintf("bus: bad subject token %q: %s", tc.token, tc.why)
			if err == nil || err.Error() != want || !errors.Is(err, ErrBadSubject) {
				t.Fatalf("ValidateToken(%q) = %v, want %s wrapping ErrBadSubject", tc.token, err, want)
			}
		})
	}
}

func TestQueueNamesFollowThePublishSubjectRule(t *testing.T) {
	for _, tc := range []struct {
		name, queue string
		why         string // "" for a valid name
	}{
		{"a dotted name is valid", "workers.echo", ""},
		{"a hyphenated name is valid", "processors-summarizer", ""},
		{"an empty name is refused", "", "empty"},
		{"a space is refused", "a b", "white space U+0020 at byte 1"},
		{"a tab is refused", "a\tb", "white space U+0009 at byte 1"},
		{"an ideographic space is refused", "q\u3000", "white space U+3000 at byte 1"},
		{"an empty token is refused", "a..b", "empty token at byte 2"},
		{"'*' is refused", "*", `wildcard "*" at byte 0 is not allowed in a queue group name`},
		{"a final '>' is refused", "workers.>", `wildcard ">" at byte 8 is not allowed in a queue group name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateQueue(tc.queue)
			if tc.why == "" {
				if err != nil {
					t.Fatalf("ValidateQueue(%q) = %v, want nil", tc.queue, err)
				}
				return
			}
			want := fmt.Sprintf("bus: bad queue group %q: %s", tc.queue, tc.why)
			if err == nil || err.Error() != want || !errors.Is(err, ErrBadQueue) {
				t.Fatalf("ValidateQueue(%q) = %v, want %s wrapping ErrBadQueue", tc.queue, err, want)
			}
		})
	}
}

// TestTheDocumentedCharacterClassesMatchTheUnicodeTables walks every code point and checks the
// lists in the package documentation against the Unicode tables of the
// standard library, so a character the documentation does not list is not
// refused by accident, and none it lists gets through.
func TestTheDocumentedCharacterClassesMatchTheUnicodeTables(t *testing.T) {
	in := func(r rune, ranges ...[2]rune) bool {
		for _, rg := range ranges {
			if rg[0] <= r && r <= rg[1] {
				return true
			}
		}
		return false
	}
	documentedSpace := [][2]rune{{0x09, 0x0D}, {0x20, 0x20}, {0x85, 0x85}, {0xA0, 0xA0}, {0x1680, 0x1680},
		{0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}}
	documentedControl := [][2]rune{{0x00, 0x1F}, {0x7F, 0x9F}}
	documentedDots := [][2]rune{{0x2024, 0x2024}, {0xFE52, 0xFE52}, {0xFF0E, 0xFF0E}, {0x3002, 0x3002}, {0xFF61, 0xFF61}}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		if in(r, documentedSpace...) != unicode.Is(unicode.White_Space, r) {
			t.Errorf("%U: documented as white space = %v, Unicode White_Space = %v", r, !unicode.Is(unicode.White_Space, r), unicode.Is(unicode.White_Space, r))
		}
		if in(r, documentedControl...) != unicode.Is(unicode.Cc, r) {
			t.Errorf("%U: documented as a control character = %v, Unicode Cc = %v", r, !unicode.Is(unicode.Cc, r), unicode.Is(unicode.Cc, r))
		}
		refused := in(r, documentedSpace...) || in(r, documentedControl...) || unicode.Is(unicode.Cf, r) || in(r, documentedDots...) ||
			r == '.' || r == '*' || r == '>'
		if err := ValidateToken(string(r)); (err != nil) != refused {
			t.Errorf("ValidateToken(%q) = %v, want refused = %v", string(r), err, refused)
		}
	}
}

func TestMatchFollowsTheNATSWildcardRules(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"*.b", "a.b", true},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"a.*.>", "a.b", false},
		{"a.*.>", "a.b.c.d", true},
		{"ab", "a", false},
		{"a", "ab", false},
	} {
		if got := Match(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
	}
}

func TestHeadersKeepTheCaseAndEveryValue(t *testing.T) {
	h := Header{}
	h.Add("X-Trace", "1")
	h.Add("X-Trace", "2")
	h.Set("x-trace", "lower")
	if got := h.Values("X-Trace"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("Values(X-Trace) = %v", got)
	}
	if h.Get("x-trace") != "lower" || h.Get("X-TRACE") != "" {
		t.Errorf("keys are not case-preserving: %v", h)
	}
	c := h.Clone()
	c.Add("X-Trace", "3")
	if len(h.Values("X-Trace")) != 2 {
		t.Error("Clone shares value slices with the original")
	}
	h.Del("x-trace")
	if _, ok := h["x-trace"]; ok {
		t.Error("Del left the key")
	}
	if Header(nil).Clone() != nil {
		t.Error("the clone of a nil header is not nil")
	}
}

// matchBySplit is the plain reading of the wildcard rules, to check Match
// against.
func matchBySplit(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

func FuzzMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"a.*", "a.b"}, {"a.>", "a.b.c"}, {">", "x"}, {"heddle.tasks.*.local", "heddle.tasks.echo.local"}, {"a.*.>", "a.b"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		if ValidateSubscribeSubject(pattern) != nil || ValidatePublishSubject(subject) != nil {
			return
		}
		if got, want := Match(pattern, subject), matchBySplit(pattern, subject); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, subject, got, want)
		}
	})
}

func TestPendingLimitsAndQueueOptionsResolve(t *testing.T) {
	o, err := NewSubscribeOptions()
	if err != nil || o.PendingMsgs != DefaultPendingMsgs || o.PendingBytes != DefaultPendingBytes || o.Queue != "" {
		t.Fatalf("defaults = %+v, %v", o, err)
	}
	o, err = NewSubscribeOptions(Queue("router"), PendingLimits(10, 0))
	if err != nil || o.Queue != "router" || o.PendingMsgs != 10 || o.PendingBytes != DefaultPendingBytes {
		t.Fatalf("options = %+v, %v", o, err)
	}
	if _, err := NewSubscribeOptions(Queue("a b")); !errors.Is(err, ErrBadQueue) {
		t.Fatalf("a queue name with a space: %v, want ErrBadQueue", err)
	}
}

// benchSubjects are subjects of the shapes the SDK publishes to.
var benchSubjects = []struct{ name, subject string }{
	{"short", "heddle.tasks.incoming"},
	{"uuid", "heddle.results.2f1c9a7e-5b0d-4c1e-9d7a-3f6b8e2a1c04"},
	{"unicode", "heddle.tasks.résumé.standard"},
}

// BenchmarkValidatePublishSubject measures the check every publish makes.
func BenchmarkValidatePublishSubject(b *testing.B) {
	for _, s := range benchSubjects {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if err := ValidatePublishSubject(s.subject); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
