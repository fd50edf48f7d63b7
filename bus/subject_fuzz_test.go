package bus

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// subjectBySplit is the plain reading of the subject rule in the package
// documentation, written against the Unicode tables rather than the
// checks' fast paths, to compare them with.
func subjectBySplit(s string, wildcards bool) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.In(r, unicode.White_Space, unicode.Cc, unicode.Cf) || strings.ContainsRune("\u2024\uFE52\uFF0E\u3002\uFF61", r) {
			return false
		}
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return false
		case tok == "*" || tok == ">":
			if !wildcards || (tok == ">" && i != len(tokens)-1) {
				return false
			}
		}
	}
	return true
}

// errAt finds the byte offset and, when one is named, the code point in a
// check's error.
var errAt = regexp.MustCompile(`(?:U\+([0-9A-F]{4,6}) )?at byte (\d+)`)

// FuzzSubject checks the subject, token and queue group checks against
// subjectBySplit, and that every error wraps the right sentinel, quotes the
// checked string and points at a byte offset where the named character
// really is.
func FuzzSubject(f *testing.F) {
	for _, seed := range []string{
		"heddle.tasks.incoming", "heddle.tasks.*.local", "heddle.results.>", ">", "*", "a.>.b",
		"", ".", "a..b", "a.", "heddle.tasks.a b", "a\tb", "a\u0085b", "a\u00a0b", "a\u3000b",
		"a\x00b", "a\x7fb", "a\u200bb", "a\ufeffb", "a\u202eb", "a\uff0eb", "a\u3002b", "a\ufe52b",
		"a\u2024b", "a\uff61b", "a\xffb", "a\xc0\xae", "résumé.日本語", "a.\U0001F680", "a.b*.>c",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checks := []struct {
			name     string
			fn       func(string) error
			valid    bool
			sentinel error
			prefix   string
		}{
			{"ValidatePublishSubject", ValidatePublishSubject, subjectBySplit(s, false), ErrBadSubject, fmt.Sprintf("bus: bad subject %q: ", s)},
			{"ValidateSubscribeSubject", ValidateSubscribeSubject, subjectBySplit(s, true), ErrBadSubject, fmt.Sprintf("bus: bad subject %q: ", s)},
			{"ValidateQueue", ValidateQueue, subjectBySplit(s, false), ErrBadQueue, fmt.Sprintf("bus: bad queue group %q: ", s)},
			{"ValidateToken", ValidateToken, subjectBySplit(s, false) && !strings.Contains(s, "."), ErrBadSubject, fmt.Sprintf("bus: bad subject token %q: ", s)},
		}
		for _, c := range checks {
			err := c.fn(s)
			if (err == nil) != c.valid {
				t.Fatalf("%s(%q) = %v, want valid = %v", c.name, s, err, c.valid)
			}
			if err == nil {
				continue
			}
			if !errors.Is(err, c.sentinel) || !strings.HasPrefix(err.Error(), c.prefix) {
				t.Fatalf("%s(%q) = %v, want %q... wrapping %v", c.name, s, err, c.prefix, c.sentinel)
			}
			why := err.Error()[len(c.prefix):]
			m := errAt.FindStringSubmatch(why)
			if m == nil {
				if s != "" {
					t.Fatalf("%s(%q) = %v: no byte offset", c.name, s, err)
				}
				continue
			}
			at, _ := strconv.Atoi(m[2])
			if at > len(s) {
				t.Fatalf("%s(%q) = %v: offset past the end", c.name, s, err)
			}
			r, size := utf8.DecodeRuneInString(s[at:])
			switch {
			case m[1] != "":
				if want, _ := strconv.ParseUint(m[1], 16, 32); r != rune(want) {
					t.Fatalf("%s(%q) = %v: the character at byte %d is %U", c.name, s, err, at, r)
				}
			case strings.HasPrefix(why, "invalid UTF-8"):
				if r != utf8.RuneError || size != 1 {
					t.Fatalf("%s(%q) = %v: the UTF-8 at byte %d is valid", c.name, s, err, at)
				}
			}
		}
	})
}
