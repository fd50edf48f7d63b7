package bus

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The subject rule is stated once, in the package documentation ("Subjects
// and queue groups"); every check below applies it through check, so a
// token, a subject and a queue group name are judged by the same code.

// ValidateToken reports whether token can be one token of a publish
// subject: non-empty, no '.', not a wildcard ("*" or ">"), and none of the
// characters the package documentation rules out. Use it for values that
// become a token of a subject, such as a worker type or a task id. The
// error wraps ErrBadSubject and names the token and the offending
// character and its byte offset.
func ValidateToken(token string) error {
	return check(token, checkToken)
}

// ValidatePublishSubject reports whether subject can be published to: one
// or more valid tokens separated by '.', none of them a wildcard. The error
// wraps ErrBadSubject and names the subject and what is wrong at which byte
// offset, for example
//
//	bus: bad subject "heddle.tasks.a b": white space U+0020 at byte 14
func ValidatePublishSubject(subject string) error {
	return check(subject, checkPublish)
}

// ValidateSubscribeSubject reports whether subject can be subscribed to:
// like a publish subject, but a token may be the wildcard "*" (exactly one
// token), and the last token may be ">" (one or more tokens). The error
// wraps ErrBadSubject, like ValidatePublishSubject's.
func ValidateSubscribeSubject(subject string) error {
	return check(subject, checkSubscribe)
}

// ValidateQueue reports whether name is a usable queue group name. It
// follows the publish subject rule: '.'-separated valid tokens, no
// wildcards. The error wraps ErrBadQueue and names the group and what is
// wrong at which byte offset.
func ValidateQueue(name string) error {
	return check(name, checkQueue)
}

// checkKind is what a checked string is used as.
type checkKind uint8

const (
	checkToken checkKind = iota
	checkPublish
	checkSubscribe
	checkQueue
)

// check applies the subject rule to s used as kind. It is on the path of
// every publish, so ASCII is judged a byte at a time and only other
// characters are decoded.
func check(s string, kind checkKind) error {
	if s == "" {
		return kind.fail(s, "empty")
	}
	start := 0 // of the current token
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '.':
				if kind == checkToken {
					return kind.fail(s, fmt.Sprintf("'.' at byte %d: a token cannot contain the separator", i))
				}
				if err := kind.token(s, start, i); err != nil {
					return err
				}
				start = i + 1
			case c <= ' ' || c == 0x7f: // C0 controls, space, DEL
				return kind.fail(s, describe(rune(c), i))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return kind.fail(s, fmt.Sprintf("invalid UTF-8 (byte 0x%02X) at byte %d", c, i))
		}
		if bad := describe(r, i); bad != "" {
			return kind.fail(s, bad)
		}
		i += size
	}
	return kind.token(s, start, len(s))
}

// describe names what makes r, found at byte offset at, unusable in a
// subject, or returns "" when it is usable.
func describe(r rune, at int) string {
	var what string
	switch {
	case unicode.IsSpace(r): // exactly the White_Space property
		what = "white space"
	case unicode.IsControl(r): // category Cc
		what = "control character"
	case unicode.Is(unicode.Cf, r):
		what = "invisible format character"
	case isLookalikeDot(r):
		what = "lookalike of '.'"
	default:
		return ""
	}
	return fmt.Sprintf("%s %U at byte %d", what, r, at)
}

// isLookalikeDot reports the characters that NFKC normalisation turns into
// '.' (U+2024, U+FE52, U+FF0E) and the ideographic full stops IDNA treats
// as label separators (U+3002, U+FF61).
func isLookalikeDot(r rune) bool {
	switch r {
	case '\u2024', '\uFE52', '\uFF0E', '\u3002', '\uFF61':
		return true
	}
	return false
}

// token checks the wildcard and emptiness rules for s[start:end], a token
// whose characters have been checked.
func (kind checkKind) token(s string, start, end int) error {
	tok := s[start:end]
	switch {
	case tok == "":
		return kind.fail(s, fmt.Sprintf("empty token at byte %d", start))
	case tok != "*" && tok != ">":
		return nil
	case kind != checkSubscribe:
		return kind.fail(s, fmt.Sprintf("wildcard %q at byte %d is not allowed in %s", tok, start, kind.where()))
	case tok == ">" && end != len(s):
		return kind.fail(s, fmt.Sprintf("wildcard \">\" at byte %d is not the last token", start))
	}
	return nil
}

func (kind checkKind) where() string {
	switch kind {
	case checkToken:
		return "a token"
	case checkQueue:
		return "a queue group name"
	}
	return "a publish subject"
}

// fail builds the error: the sentinel, what s is, s itself and why.
func (kind checkKind) fail(s, why string) error {
	switch kind {
	case checkToken:
		return fmt.Errorf("%w token %q: %s", ErrBadSubject, s, why)
	case checkQueue:
		return fmt.Errorf("%w %q: %s", ErrBadQueue, s, why)
	}
	return fmt.Errorf("%w %q: %s", ErrBadSubject, s, why)
}

// Match reports whether a publish subject matches a subscription pattern.
// Both are assumed valid: "*" matches exactly one token, a final ">"
// matches one or more tokens.
func Match(pattern, subject string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		if pt == ">" {
			return subject != ""
		}
		st, srest, smore := strings.Cut(subject, ".")
		if pt != "*" && pt != st {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}

// HasWildcard reports whether a subscription subject contains a wildcard
// token.
func HasWildcard(subject string) bool {
	for _, tok := range strings.Split(subject, ".") {
		if tok == "*" || tok == ">" {
			return true
		}
	}
	return false
}
